#include "policy/packed_linear.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace clinrl::policy {
namespace {

constexpr int64_t P = kPackedPanelWidth;
// Rows of x per register tile: 8 rows x 2 vectors = 16 accumulators, plus
// the panel row's two vectors and a broadcast, within the 32 registers.
constexpr int64_t kTileRows = 8;
// Rows of x per block: 256 rows of a 512-wide x are 512 KB, within L2.
constexpr int64_t kBlockRows = 256;

#if defined(__x86_64__)
// What one tile call needs: x rows (ldx apart), the panel ([K][32]), its
// bias (32 values, or null), and where the outputs go (ldo apart, `valid`
// of the 32 columns kept). The tiles of a panel share prefetching the next
// panel (or null): tile `phase` of `tiles` fetches the rows k with
// k % tiles == phase, so the memory reads spread over the panel's compute.
struct TileArgs {
  const float* x;
  int64_t ldx;
  int64_t K;
  const float* panel;
  const float* bias;
  const float* prefetch;
  int64_t phase;
  int64_t tiles;
  float* out;
  int64_t ldo;
  int64_t valid;
};

__attribute__((target("avx512f"))) inline void StoreRow(__m512 lo, __m512 hi,
                                                        float* out,
                                                        int64_t valid) {
  if (valid == P) {
    _mm512_storeu_ps(out, lo);
    _mm512_storeu_ps(out + 16, hi);
    return;
  }
  alignas(64) float row[P];
  _mm512_store_ps(row, lo);
  _mm512_store_ps(row + 16, hi);
  std::memcpy(out, row, static_cast<size_t>(valid) * sizeof(float));
}

// MR rows of x times one panel.
template <int MR>
__attribute__((target("avx512f"))) void Tile(const TileArgs& a) {
  __m512 lo[MR], hi[MR];
  const __m512 bias_lo =
      a.bias != nullptr ? _mm512_loadu_ps(a.bias) : _mm512_setzero_ps();
  const __m512 bias_hi =
      a.bias != nullptr ? _mm512_loadu_ps(a.bias + 16) : _mm512_setzero_ps();
  for (int m = 0; m < MR; ++m) {
    lo[m] = bias_lo;
    hi[m] = bias_hi;
  }
  for (int64_t k = 0; k < a.K; ++k) {
    const float* row = a.panel + k * P;
    if (a.prefetch != nullptr && k % a.tiles == a.phase) {
      _mm_prefetch(reinterpret_cast<const char*>(a.prefetch + k * P),
                   _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(a.prefetch + k * P + 16),
                   _MM_HINT_T0);
    }
    const __m512 w_lo = _mm512_loadu_ps(row);
    const __m512 w_hi = _mm512_loadu_ps(row + 16);
    for (int m = 0; m < MR; ++m) {
      const __m512 xv = _mm512_set1_ps(a.x[m * a.ldx + k]);
      lo[m] = _mm512_fmadd_ps(xv, w_lo, lo[m]);
      hi[m] = _mm512_fmadd_ps(xv, w_hi, hi[m]);
    }
  }
  for (int m = 0; m < MR; ++m)
    StoreRow(lo[m], hi[m], a.out + m * a.ldo, a.valid);
}

// One row: a single pair of accumulators would wait on the FMA latency
// every step, so four steps of k run on four pairs, summed at the end.
template <>
__attribute__((target("avx512f"))) void Tile<1>(const TileArgs& a) {
  __m512 lo[4], hi[4];
  for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 4 <= a.K; k += 4) {
    const float* rows = a.panel + k * P;
    if (a.prefetch != nullptr && (k / 4) % a.tiles == a.phase) {
      for (int line = 0; line < 8; ++line) {
        _mm_prefetch(
            reinterpret_cast<const char*>(a.prefetch + k * P + line * 16),
            _MM_HINT_T0);
      }
    }
    for (int j = 0; j < 4; ++j) {
      const __m512 xv = _mm512_set1_ps(a.x[k + j]);
      lo[j] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(rows + j * P), lo[j]);
      hi[j] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(rows + j * P + 16), hi[j]);
    }
  }
  for (; k < a.K; ++k) {
    const __m512 xv = _mm512_set1_ps(a.x[k]);
    lo[0] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(a.panel + k * P), lo[0]);
    hi[0] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(a.panel + k * P + 16), hi[0]);
  }
  __m512 sum_lo =
      _mm512_add_ps(_mm512_add_ps(lo[0], lo[1]), _mm512_add_ps(lo[2], lo[3]));
  __m512 sum_hi =
      _mm512_add_ps(_mm512_add_ps(hi[0], hi[1]), _mm512_add_ps(hi[2], hi[3]));
  if (a.bias != nullptr) {
    sum_lo = _mm512_add_ps(sum_lo, _mm512_loadu_ps(a.bias));
    sum_hi = _mm512_add_ps(sum_hi, _mm512_loadu_ps(a.bias + 16));
  }
  StoreRow(sum_lo, sum_hi, a.out, a.valid);
}

using TileFn = void (*)(const TileArgs&);
constexpr TileFn kTiles[kTileRows + 1] = {nullptr,  &Tile<1>, &Tile<2>,
                                          &Tile<3>, &Tile<4>, &Tile<5>,
                                          &Tile<6>, &Tile<7>, &Tile<8>};
#endif

}  // namespace

bool PackedLinearAvailable() {
#if defined(__x86_64__)
  static const bool available = __builtin_cpu_supports("avx512f");
  return available;
#else
  return false;
#endif
}

PackedLinearWeight::PackedLinearWeight(const at::Tensor& weight,
                                       const at::Tensor& bias) {
  CLINRL_CHECK(PackedLinearAvailable(),
               "PackedLinearWeight: this CPU has no AVX-512F");
  CLINRL_CHECK(weight.dim() == 2 && weight.device().is_cpu(),
               "PackedLinearWeight: weight of {} dims on {} (expected "
               "[out, in] on the CPU)",
               weight.dim(), weight.device().str());
  out_features_ = weight.size(0);
  in_features_ = weight.size(1);
  const int64_t panels = (out_features_ + P - 1) / P;
  torch::NoGradGuard no_grad;
  const at::Tensor padded = torch::zeros({panels * P, in_features_},
                                         weight.options().dtype(torch::kFloat));
  padded.narrow(0, 0, out_features_).copy_(weight);
  // [panels, 32, in] -> [panels, in, 32]
  panels_ = padded.view({panels, P, in_features_}).transpose(1, 2).contiguous();
  if (bias.defined()) {
    CLINRL_CHECK(bias.dim() == 1 && bias.size(0) == out_features_,
                 "PackedLinearWeight: bias of {} values for {} outputs",
                 bias.numel(), out_features_);
    bias_ = torch::zeros({panels * P}, padded.options());
    bias_.narrow(0, 0, out_features_).copy_(bias);
  }
}

int64_t PackedLinearWeight::bytes() const {
  return (panels_.defined() ? panels_.nbytes() : 0) +
         (bias_.defined() ? bias_.nbytes() : 0);
}

at::Tensor PackedLinearWeight::Apply(const at::Tensor& x_in) const {
  CLINRL_CHECK(defined(), "PackedLinearWeight::Apply on an empty weight");
  CLINRL_CHECK(
      x_in.dim() == 2 && x_in.size(1) == in_features_ &&
          x_in.scalar_type() == torch::kFloat && x_in.device().is_cpu(),
      "PackedLinearWeight::Apply: x of {} dims, {} columns, {} on {} "
      "(expected [M, {}] float32 on the CPU)",
      x_in.dim(), x_in.dim() == 2 ? x_in.size(1) : 0,
      c10::toString(x_in.scalar_type()), x_in.device().str(), in_features_);
  const at::Tensor x = x_in.contiguous();
  const int64_t M = x.size(0), K = in_features_, N = out_features_;
  at::Tensor out = torch::empty({M, N}, x.options());
  if (M == 0) return out;
#if defined(__x86_64__)
  const int64_t panels = panels_.size(0);
  const float* xp = x.data_ptr<float>();
  const float* wp = panels_.data_ptr<float>();
  const float* bp = bias_.defined() ? bias_.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  // Rows in blocks, so that a block of x stays in cache while every panel
  // passes it; each panel is read once per block.
  for (int64_t m0 = 0; m0 < M; m0 += kBlockRows) {
    const int64_t block = std::min(kBlockRows, M - m0);
    // At least ~256K multiply-adds a task, so a small product is not split
    // across threads for less work than waking one costs.
    const int64_t grain = std::max<int64_t>(
        1, (int64_t{1} << 18) / std::max<int64_t>(1, block * K * P));
    at::parallel_for(0, panels, grain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        TileArgs args{};
        args.ldx = K;
        args.K = K;
        args.panel = wp + p * K * P;
        args.bias = bp != nullptr ? bp + p * P : nullptr;
        args.ldo = N;
        args.valid = std::min(P, N - p * P);
        // The first tile reads the panel from memory, the later ones find
        // it in cache; all of them fetch the next panel meanwhile.
        args.prefetch = p + 1 < panels ? args.panel + K * P : nullptr;
        args.tiles = (block + kTileRows - 1) / kTileRows;
        for (int64_t m = m0; m < m0 + block; m += kTileRows) {
          args.x = xp + m * K;
          args.out = op + m * N + p * P;
          args.phase = (m - m0) / kTileRows;
          kTiles[std::min(kTileRows, m0 + block - m)](args);
        }
      }
    });
  }
#endif
  return out;
}

}  // namespace clinrl::policy
