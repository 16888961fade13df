#include "policy/fused_linear.h"

#include <torch/torch.h>

#include "policy/skinny_linear.h"

namespace clinrl::policy {

void FusedLinear::AddSource(Sources& sources, const torch::Tensor& t) {
  sources.push_back(t.defined() ? std::make_pair(t.data_ptr(), t._version())
                                : std::make_pair(nullptr, int64_t{0}));
}

bool FusedLinear::Current(const Sources& sources, c10::ScalarType dtype) const {
  return dtype_ == dtype && sources == sources_;
}

void FusedLinear::Prepare(const torch::Tensor& weight,
                          const torch::Tensor& bias, c10::ScalarType dtype,
                          Sources sources) {
  torch::NoGradGuard no_grad;
  packed_ = PackedLinearWeight();
  weight_ = bias_ = torch::Tensor();
  if (dtype == torch::kFloat && weight.device().is_cpu() &&
      PackedLinearAvailable()) {
    packed_ = PackedLinearWeight(weight, bias);
  } else {
    // .to() returns the tensor itself when the dtype matches: a single
    // layer's own weight is then used in place, not copied.
    weight_ = weight.to(dtype).contiguous();
    if (bias.defined()) bias_ = bias.to(dtype);
  }
  dtype_ = dtype;
  sources_ = std::move(sources);
}

torch::Tensor FusedLinear::Apply(const std::vector<torch::nn::Linear>& parts,
                                 const std::vector<LoraAdapter>& adapters,
                                 const torch::Tensor& x,
                                 c10::ScalarType dtype) {
  Sources now;
  for (size_t i = 0; i < parts.size(); ++i) {
    AddSource(now, parts[i]->weight);
    AddSource(now, parts[i]->bias);
    if (adapters[i]) {
      AddSource(now, adapters[i].a->weight);
      AddSource(now, adapters[i].b->weight);
    }
  }
  if (!Current(now, dtype)) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> weights, biases;
    bool any_bias = false;
    for (size_t i = 0; i < parts.size(); ++i) {
      weights.push_back(MergedWeight(parts[i], adapters[i]));
      any_bias = any_bias || parts[i]->bias.defined();
    }
    // Parts with a bias beside parts without: zeros stand for the missing.
    for (size_t i = 0; any_bias && i < parts.size(); ++i) {
      biases.push_back(
          parts[i]->bias.defined()
              ? parts[i]->bias
              : torch::zeros({weights[i].size(0)}, weights[i].options()));
    }
    Prepare(weights.size() == 1 ? weights[0] : torch::cat(weights, 0),
            biases.empty()       ? torch::Tensor()
            : biases.size() == 1 ? biases[0]
                                 : torch::cat(biases, 0),
            dtype, std::move(now));
  }
  return Run(x, dtype);
}

torch::Tensor FusedLinear::Apply(const torch::Tensor& weight,
                                 const torch::Tensor& x,
                                 c10::ScalarType dtype) {
  Sources now;
  AddSource(now, weight);
  if (!Current(now, dtype)) {
    Prepare(weight, torch::Tensor(), dtype, std::move(now));
  }
  return Run(x, dtype);
}

torch::Tensor FusedLinear::Run(const torch::Tensor& x,
                               c10::ScalarType dtype) const {
  const torch::Tensor input = x.scalar_type() == dtype ? x : x.to(dtype);
  if (packed_.defined()) return packed_.Apply(input);
  if (SkinnyLinearApplies(input, weight_)) {
    return SkinnyLinear(input, weight_, bias_);
  }
  return torch::linear(input, weight_, bias_);
}

}  // namespace clinrl::policy
