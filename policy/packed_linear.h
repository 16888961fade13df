// x W^T + b on the CPU in float32 with the weight stored once more, in
// panels of 32 output features laid out input-major ([out / 32][in][32],
// the last panel zero-padded). A register tile of 8 rows of x by one panel
// (16 accumulators of 16 lanes) reads each panel row as two vector loads and
// each x value as one broadcast, so the product runs at the FMA units' rate
// once the panel is in cache, and the panel itself is read from memory front
// to back while the next one is prefetched.
//
// Why not the BLAS: at decoding's row counts (1 to a few dozen) the library
// packs the weight on every call, and on the AMD CPUs the project runs on
// MKL takes its AVX2 kernels. At 32 rows the model's products ran about
// three times faster packed (docs/policy.md, "The packed product").
// AVX-512F only; elsewhere PackedLinearAvailable() is false and callers keep
// the library's product.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>

namespace clinrl::policy {

// Output features per panel: two 16-lane vectors.
constexpr int64_t kPackedPanelWidth = 32;

// Whether this CPU runs the packed kernel (x86-64 with AVX-512F).
bool PackedLinearAvailable();

// A weight [out, in] (and optional bias [out]) in panel order, float32 CPU.
class PackedLinearWeight {
 public:
  PackedLinearWeight() = default;
  // Copies `weight` [out, in] (any float dtype, CPU) into panels; `bias`
  // [out] may be undefined. Throws unless PackedLinearAvailable().
  PackedLinearWeight(const at::Tensor& weight, const at::Tensor& bias);

  bool defined() const { return panels_.defined(); }
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  // Bytes held (the panels and the padded bias).
  int64_t bytes() const;

  // x [M, in] float32 CPU (any M >= 1) -> [M, out].
  at::Tensor Apply(const at::Tensor& x) const;

 private:
  at::Tensor panels_;  // [ceil(out / 32), in, 32]
  at::Tensor bias_;    // [ceil(out / 32) * 32], or undefined
  int64_t in_features_ = 0, out_features_ = 0;
};

}  // namespace clinrl::policy
