// Several linear layers that read the same input, run as one: their weights
// (and biases) concatenated along the output features, so decoding does one
// larger product instead of several small ones (q/k/v, gate/up). The
// concatenation is rebuilt whenever a source weight changes (the optimizer's
// in-place updates and checkpoint loads bump a tensor's version counter), so
// it never serves stale weights. A part with a LoRA adapter contributes its
// merged weight (policy/lora.h), rebuilt when the adapter changes.
// Inference only: no gradient reaches the sources through it.
#pragma once

#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <vector>

#include "policy/lora.h"

namespace clinrl::policy {

class FusedLinear {
 public:
  // x [..., in] -> [..., sum of out features], in `dtype` (the compute dtype:
  // the parameters' own, or bfloat16 under bf16).
  // `adapters` has one entry per part (empty adapters for none).
  torch::Tensor Apply(const std::vector<torch::nn::Linear>& parts,
                      const std::vector<LoraAdapter>& adapters,
                      const torch::Tensor& x, c10::ScalarType dtype);

 private:
  using Sources = std::vector<std::pair<const void*, int64_t>>;
  static Sources SourcesOf(const std::vector<torch::nn::Linear>& parts,
                           const std::vector<LoraAdapter>& adapters);
  torch::Tensor weight_, bias_;
  // (data pointer, version) of each source weight and bias when built.
  Sources sources_;
};

}  // namespace clinrl::policy
