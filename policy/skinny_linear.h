// x W^T + b for a few rows of x (batch-1 and small-batch decoding) on the
// CPU, float32: each weight row is read once from memory and multiplied
// with every row of x while it is in registers, output rows split across
// the intra-op threads. Decoding at batch 1 reads every weight once per
// token, so it runs at the memory's read rate; the BLAS product of one row
// reached about 8 GB/s on the 2-core development machine, whose memory
// reads 21 GB/s (docs/policy.md, "Measured").
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>

namespace clinrl::policy {

// The most rows of x this path takes; more go to the BLAS product.
constexpr int64_t kSkinnyLinearMaxRows = 8;

// Whether SkinnyLinear applies: CPU float32, x [M, in] with M <=
// kSkinnyLinearMaxRows, weight [out, in] contiguous, bias [out] or none.
bool SkinnyLinearApplies(const at::Tensor& x, const at::Tensor& weight);

// x [M, in], weight [out, in], bias [out] (may be undefined) -> [M, out].
at::Tensor SkinnyLinear(const at::Tensor& x, const at::Tensor& weight,
                        const at::Tensor& bias);

}  // namespace clinrl::policy
