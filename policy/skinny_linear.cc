#include "policy/skinny_linear.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/error.h"

namespace clinrl::policy {
namespace {

#if defined(__x86_64__)
// out[m] = dot(x[m], w) for M rows of x; x and w of length n.
template <int M>
__attribute__((target("avx2,fma"))) void DotRowsAvx2(const float* x, int64_t n,
                                                     const float* w, float* out,
                                                     int64_t out_stride) {
  __m256 acc[M];
  for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 wv = _mm256_loadu_ps(w + i);
    for (int m = 0; m < M; ++m) {
      acc[m] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * n + i), wv, acc[m]);
    }
  }
  for (int m = 0; m < M; ++m) {
    // Horizontal sum of the 8 lanes, then the tail.
    const __m128 lo = _mm256_castps256_ps128(acc[m]);
    const __m128 hi = _mm256_extractf128_ps(acc[m], 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    float total = _mm_cvtss_f32(s);
    for (int64_t j = i; j < n; ++j) total += x[m * n + j] * w[j];
    out[m * out_stride] = total;
  }
}
#endif

template <int M>
void DotRowsPortable(const float* x, int64_t n, const float* w, float* out,
                     int64_t out_stride) {
  for (int m = 0; m < M; ++m) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      for (int k = 0; k < 8; ++k) acc[k] += x[m * n + i + k] * w[i + k];
    }
    float total = 0;
    for (float a : acc) total += a;
    for (; i < n; ++i) total += x[m * n + i] * w[i];
    out[m * out_stride] = total;
  }
}

using DotRows = void (*)(const float*, int64_t, const float*, float*, int64_t);

template <int M>
DotRows Pick(bool avx2) {
#if defined(__x86_64__)
  if (avx2) return &DotRowsAvx2<M>;
#endif
  return &DotRowsPortable<M>;
}

DotRows ForRows(int64_t rows) {
#if defined(__x86_64__)
  static const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  constexpr bool avx2 = false;
#endif
  switch (rows) {
    case 1:
      return Pick<1>(avx2);
    case 2:
      return Pick<2>(avx2);
    case 3:
      return Pick<3>(avx2);
    case 4:
      return Pick<4>(avx2);
    case 5:
      return Pick<5>(avx2);
    case 6:
      return Pick<6>(avx2);
    case 7:
      return Pick<7>(avx2);
    default:
      return Pick<8>(avx2);
  }
}

}  // namespace

bool SkinnyLinearApplies(const at::Tensor& x, const at::Tensor& weight) {
  return x.device().is_cpu() && weight.device().is_cpu() &&
         x.scalar_type() == torch::kFloat &&
         weight.scalar_type() == torch::kFloat && x.dim() == 2 &&
         x.size(0) >= 1 && x.size(0) <= kSkinnyLinearMaxRows &&
         weight.dim() == 2 && weight.is_contiguous() &&
         x.size(1) == weight.size(1);
}

at::Tensor SkinnyLinear(const at::Tensor& x_in, const at::Tensor& weight,
                        const at::Tensor& bias) {
  CLINRL_CHECK(SkinnyLinearApplies(x_in, weight),
               "SkinnyLinear: x of {} dims, {} rows is not supported",
               x_in.dim(), x_in.dim() > 0 ? x_in.size(0) : 0);
  const at::Tensor x = x_in.contiguous();
  const int64_t M = x.size(0), n = x.size(1), out_features = weight.size(0);
  at::Tensor out = torch::empty({M, out_features}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const DotRows dot = ForRows(M);
  // Output rows in chunks of about 32 KB of weights per task.
  const int64_t grain = std::max<int64_t>(1, 8192 / n);
  at::parallel_for(0, out_features, grain, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      dot(xp, n, wp + o * n, op + o, out_features);
    }
  });
  if (bias.defined()) out.add_(bias.to(out.scalar_type()));
  return out;
}

}  // namespace clinrl::policy
