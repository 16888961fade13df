// Linear layers at inference, their weights prepared once for the kernel
// that runs them. Several layers that read the same input run as one
// (q/k/v, gate/up): their weights (and biases) concatenated along the output
// features, so decoding does one larger product instead of several small
// ones. On a CPU with AVX-512 in float32 the weight is kept in panel order
// for the packed product (policy/packed_linear.h), which then runs every
// row count; elsewhere the concatenation runs through the few-row product
// or the library's.
//
// The prepared weight is rebuilt whenever a source weight changes (the
// optimizer's in-place updates and checkpoint loads bump a tensor's version
// counter), so it never serves stale weights. A part with a LoRA adapter
// contributes its merged weight (policy/lora.h), rebuilt when the adapter
// changes. Inference only: no gradient reaches the sources through it.
#pragma once

#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <vector>

#include "policy/lora.h"
#include "policy/packed_linear.h"

namespace clinrl::policy {

class FusedLinear {
 public:
  // x [N, in] -> [N, sum of out features], in `dtype` (the compute dtype:
  // the parameters' own, or bfloat16 under bf16).
  // `adapters` has one entry per part (empty adapters for none).
  torch::Tensor Apply(const std::vector<torch::nn::Linear>& parts,
                      const std::vector<LoraAdapter>& adapters,
                      const torch::Tensor& x, c10::ScalarType dtype);
  // One bare weight [out, in], no bias or adapter (an output head tied to
  // the embedding).
  torch::Tensor Apply(const torch::Tensor& weight, const torch::Tensor& x,
                      c10::ScalarType dtype);

 private:
  using Sources = std::vector<std::pair<const void*, int64_t>>;
  static void AddSource(Sources& sources, const torch::Tensor& t);
  // Whether the weight is prepared for `dtype` from `sources`.
  bool Current(const Sources& sources, c10::ScalarType dtype) const;
  // Prepares weight [out, in] and bias [out] (may be undefined) for dtype.
  void Prepare(const torch::Tensor& weight, const torch::Tensor& bias,
               c10::ScalarType dtype, Sources sources);
  torch::Tensor Run(const torch::Tensor& x, c10::ScalarType dtype) const;

  PackedLinearWeight packed_;
  torch::Tensor weight_, bias_;
  c10::ScalarType dtype_ = c10::ScalarType::Undefined;
  // (data pointer, version) of each source weight and bias when prepared.
  Sources sources_;
};

}  // namespace clinrl::policy
