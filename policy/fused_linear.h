// Several linear layers that read the same input, run as one: their weights
// (and biases) concatenated along the output features, so decoding does one
// larger product instead of several small ones (q/k/v, gate/up). The
// concatenation is rebuilt whenever a source weight changes (the optimizer's
// in-place updates and checkpoint loads bump a tensor's version counter), so
// it never serves stale weights. Inference only: no gradient reaches the
// sources through it.
#pragma once

#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <vector>

namespace clinrl::policy {

class FusedLinear {
 public:
  // x [..., in] -> [..., sum of out features], in `dtype` (the compute dtype:
  // the parameters' own, or bfloat16 under bf16).
  torch::Tensor Apply(const std::vector<torch::nn::Linear>& parts,
                      const torch::Tensor& x, c10::ScalarType dtype);

 private:
  bool Stale(const std::vector<torch::nn::Linear>& parts,
             c10::ScalarType dtype) const;
  torch::Tensor weight_, bias_;
  // (data pointer, version) of each source weight and bias when built.
  std::vector<std::pair<const void*, int64_t>> sources_;
};

}  // namespace clinrl::policy
