#include "policy/fused_linear.h"

#include <torch/torch.h>

#include "policy/skinny_linear.h"

namespace clinrl::policy {

FusedLinear::Sources FusedLinear::SourcesOf(
    const std::vector<torch::nn::Linear>& parts,
    const std::vector<LoraAdapter>& adapters) {
  Sources out;
  const auto add = [&out](const torch::Tensor& t) {
    out.push_back(t.defined() ? std::make_pair(t.data_ptr(), t._version())
                              : std::make_pair(nullptr, int64_t{0}));
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    add(parts[i]->weight);
    add(parts[i]->bias);
    if (adapters[i]) {
      add(adapters[i].a->weight);
      add(adapters[i].b->weight);
    }
  }
  return out;
}

torch::Tensor FusedLinear::Apply(const std::vector<torch::nn::Linear>& parts,
                                 const std::vector<LoraAdapter>& adapters,
                                 const torch::Tensor& x,
                                 c10::ScalarType dtype) {
  const bool dtype_changed =
      !weight_.defined() || weight_.scalar_type() != dtype;
  Sources now = SourcesOf(parts, adapters);
  if (dtype_changed || now != sources_) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> weights, biases;
    for (size_t i = 0; i < parts.size(); ++i) {
      weights.push_back(MergedWeight(parts[i], adapters[i]));
      if (parts[i]->bias.defined()) biases.push_back(parts[i]->bias);
    }
    weight_ = torch::cat(weights, 0).to(dtype).contiguous();
    bias_ = biases.size() == parts.size() ? torch::cat(biases, 0).to(dtype)
                                          : torch::Tensor();
    sources_ = std::move(now);
  }
  const torch::Tensor input = x.scalar_type() == dtype ? x : x.to(dtype);
  if (SkinnyLinearApplies(input, weight_)) {
    return SkinnyLinear(input, weight_, bias_);
  }
  return torch::linear(input, weight_, bias_);
}

}  // namespace clinrl::policy
