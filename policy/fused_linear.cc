#include "policy/fused_linear.h"

#include <torch/torch.h>

#include "policy/skinny_linear.h"

namespace clinrl::policy {
namespace {

void AddSource(const torch::Tensor& t,
               std::vector<std::pair<const void*, int64_t>>* out) {
  out->push_back(t.defined() ? std::make_pair(t.data_ptr(), t._version())
                             : std::make_pair(nullptr, int64_t{0}));
}

}  // namespace

bool FusedLinear::Stale(const std::vector<torch::nn::Linear>& parts,
                        c10::ScalarType dtype) const {
  if (!weight_.defined() || weight_.scalar_type() != dtype) return true;
  std::vector<std::pair<const void*, int64_t>> now;
  for (const auto& p : parts) {
    AddSource(p->weight, &now);
    AddSource(p->bias, &now);
  }
  return now != sources_;
}

torch::Tensor FusedLinear::Apply(const std::vector<torch::nn::Linear>& parts,
                                 const torch::Tensor& x,
                                 c10::ScalarType dtype) {
  if (Stale(parts, dtype)) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> weights, biases;
    sources_.clear();
    for (const auto& p : parts) {
      weights.push_back(p->weight);
      if (p->bias.defined()) biases.push_back(p->bias);
      AddSource(p->weight, &sources_);
      AddSource(p->bias, &sources_);
    }
    weight_ = torch::cat(weights, 0).to(dtype).contiguous();
    bias_ = biases.size() == parts.size() ? torch::cat(biases, 0).to(dtype)
                                          : torch::Tensor();
  }
  const torch::Tensor input = x.scalar_type() == dtype ? x : x.to(dtype);
  if (SkinnyLinearApplies(input, weight_)) {
    return SkinnyLinear(input, weight_, bias_);
  }
  return torch::linear(input, weight_, bias_);
}

}  // namespace clinrl::policy
