#include "policy/paged_attention.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "core/error.h"

namespace clinrl::policy {
namespace {

std::optional<at::Tensor> MaskOrNone(const at::Tensor& mask) {
  if (mask.defined()) return mask;
  return std::nullopt;
}

float Dot(const float* a, const float* b, int64_t n) {
  // Independent partial sums, so the compiler can vectorise the loop.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float total = 0;
  for (float x : acc) total += x;
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}

// One query head over its L keys, read from the pool at `row_slots`:
// weights[L] is scratch, out[D] the result.
void OneQuery(const float* qh, const float* keys, const float* values,
              const int64_t* row_slots, int64_t L, int64_t Hkv, int64_t kv,
              int64_t D, float scale, float* weights, float* o) {
  float top = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < L; ++j) {
    weights[j] = scale * Dot(qh, keys + (row_slots[j] * Hkv + kv) * D, D);
    top = std::max(top, weights[j]);
  }
  float total = 0;
  for (int64_t j = 0; j < L; ++j) {
    weights[j] = std::exp(weights[j] - top);
    total += weights[j];
  }
  std::fill(o, o + D, 0.0f);
  for (int64_t j = 0; j < L; ++j) {
    const float w = weights[j] / total;
    const float* v = values + (row_slots[j] * Hkv + kv) * D;
    for (int64_t d = 0; d < D; ++d) o[d] += w * v[d];
  }
}

#if defined(__x86_64__)
// GCC 12 takes the undefined start values inside its own AVX-512
// intrinsics (_mm512_undefined_ps) for (maybe-)uninitialised variables of
// the functions they are inlined into (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// The widest head the vector path keeps in registers: 16 vectors of 16.
constexpr int64_t kMaxVectorHeadDim = 256;

// exp of 16 lanes, Cephes' single-precision polynomial (about 1 ulp) on
// x - n ln2, scaled by 2^n. Arguments are softmax scores less their
// maximum (<= 0); below -87 the result is flushed toward 0.
__attribute__((target("avx512f"))) __m512 Exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(
      _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // x - n ln2, with ln2 in two parts so the reduction stays exact.
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r),
                      _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// Blocks (128 bits) 0 and 2 of a, then of b, plus blocks 1 and 3 of each.
__attribute__((target("avx512f"))) __m512 FoldBlocks(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88),
                       _mm512_shuffle_f32x4(a, b, 0xdd));
}

// The lane sums of 16 vectors as one vector, v[u]'s sum in lane u: a
// transposing tree of 45 shuffles and adds, where 16 separate horizontal
// sums take about 130.
__attribute__((target("avx512f"))) __m512 Sum16(const __m512 v[16]) {
  // In each 128-bit block: pairs of vectors, then quads, summed lane-wise
  // with their neighbours, so that block b of quad i holds, in lanes
  // 0..3, the sums over block b of v[4i..4i+3].
  __m512 pairs[8], quads[4];
  for (int i = 0; i < 8; ++i) {
    pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(pairs[2 * i]);
    const __m512d b = _mm512_castps_pd(pairs[2 * i + 1]);
    quads[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  // Across blocks: even blocks plus odd blocks, twice.
  return FoldBlocks(FoldBlocks(quads[0], quads[1]),
                    FoldBlocks(quads[2], quads[3]));
}

// q . k as 16 partial sums (lanes), q in C vectors.
__attribute__((target("avx512f"))) inline __m512 KeyPartials(const __m512* q,
                                                             int64_t C,
                                                             const float* k) {
  __m512 acc = _mm512_mul_ps(q[0], _mm512_loadu_ps(k));
  for (int64_t c = 1; c < C; ++c) {
    acc = _mm512_fmadd_ps(q[c], _mm512_loadu_ps(k + c * 16), acc);
  }
  return acc;
}

// OneQuery in 16-lane vectors, for D a multiple of 16 up to
// kMaxVectorHeadDim: the query stays in registers while the keys stream
// past, the exponentials run 16 at a time, and the output accumulates in
// registers over the values.
__attribute__((target("avx512f"))) void OneQueryAvx512(
    const float* qh, const float* keys, const float* values,
    const int64_t* row_slots, int64_t L, int64_t Hkv, int64_t kv, int64_t D,
    float scale, float* weights, float* o) {
  const int64_t C = D / 16;
  __m512 q[kMaxVectorHeadDim / 16];
  for (int64_t c = 0; c < C; ++c) q[c] = _mm512_loadu_ps(qh + c * 16);
  const __m512 scale16 = _mm512_set1_ps(scale);
  __m512 top16 = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + 16 <= L; j += 16) {
    __m512 acc[16];
    for (int u = 0; u < 16; ++u) {
      acc[u] = KeyPartials(q, C, keys + (row_slots[j + u] * Hkv + kv) * D);
    }
    const __m512 s = _mm512_mul_ps(Sum16(acc), scale16);
    _mm512_storeu_ps(weights + j, s);
    top16 = _mm512_max_ps(top16, s);
  }
  float top = _mm512_reduce_max_ps(top16);
  for (; j < L; ++j) {
    weights[j] = scale * _mm512_reduce_add_ps(KeyPartials(
                             q, C, keys + (row_slots[j] * Hkv + kv) * D));
    top = std::max(top, weights[j]);
  }
  top16 = _mm512_set1_ps(top);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < L; j += 16) {
    const __mmask16 lanes =
        L - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (L - j)) - 1);
    const __m512 w = _mm512_maskz_mov_ps(
        lanes,
        Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, weights + j), top16)));
    _mm512_mask_storeu_ps(weights + j, lanes, w);
    sum = _mm512_add_ps(sum, w);
  }
  const float inv_total = 1.0f / _mm512_reduce_add_ps(sum);
  __m512 acc[kMaxVectorHeadDim / 16];
  for (int64_t c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < L; ++j) {
    const float* v = values + (row_slots[j] * Hkv + kv) * D;
    const __m512 w = _mm512_set1_ps(weights[j]);
    for (int64_t c = 0; c < C; ++c) {
      acc[c] = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + c * 16), acc[c]);
    }
  }
  const __m512 inv = _mm512_set1_ps(inv_total);
  for (int64_t c = 0; c < C; ++c) {
    _mm512_storeu_ps(o + c * 16, _mm512_mul_ps(acc[c], inv));
  }
}
#pragma GCC diagnostic pop
#endif

using OneQueryFn = void (*)(const float*, const float*, const float*,
                            const int64_t*, int64_t, int64_t, int64_t, int64_t,
                            float, float*, float*);

OneQueryFn OneQueryFor(int64_t D) {
#if defined(__x86_64__)
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (avx512 && D % 16 == 0 && D <= kMaxVectorHeadDim) {
    return &OneQueryAvx512;
  }
#endif
  return &OneQuery;
}

// Softmax attention of each listed query over its keys, read from the pool
// [slots, Hkv, D] at its slots; query head h uses key head h / (H / Hkv), as
// enable_gqa does. q and out are [N, H, D] contiguous.
void PooledAttention(const float* q, const float* keys, const float* values,
                     int64_t H, int64_t Hkv, int64_t D,
                     const std::vector<int64_t>& query,
                     const std::vector<int64_t>& offsets,
                     const std::vector<int64_t>& lengths,
                     const std::vector<int64_t>& slots, float* out) {
  const int64_t queries = static_cast<int64_t>(query.size());
  const int64_t G = H / Hkv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const OneQueryFn one_query = OneQueryFor(D);
  // Tasks of (query, key head): the G query heads that share a key head
  // read its keys while they are in cache. The threads take contiguous
  // ranges of the task list and tasks cost their key count, which runs in
  // long monotone stretches (a prefill turn's queries, rows by context), so
  // the list is dealt in 16 interleaved stripes to even the ranges out.
  const int64_t tasks = queries * Hkv;
  constexpr int64_t kStripes = 16;
  std::vector<int64_t> dealt;
  dealt.reserve(tasks);
  for (int64_t stripe = 0; stripe < kStripes; ++stripe) {
    for (int64_t t = stripe; t < tasks; t += kStripes) dealt.push_back(t);
  }
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> weights;
    for (int64_t at = begin; at < end; ++at) {
      const int64_t task = dealt[at];
      const int64_t i = task / Hkv, kv = task % Hkv;
      const int64_t L = lengths[i];
      weights.resize(L);
      for (int64_t g = 0; g < G; ++g) {
        const int64_t h = kv * G + g;
        one_query(q + (query[i] * H + h) * D, keys, values,
                  slots.data() + offsets[i], L, Hkv, kv, D, scale,
                  weights.data(), out + (query[i] * H + h) * D);
      }
    }
  });
}

}  // namespace

void PagedAttention::Plan(const std::vector<PagedRow>& rows,
                          const c10::Device& device, c10::ScalarType dtype) {
  groups_.clear();
  pooled_ = PooledRows();
  const bool pool_reads = device.is_cpu() && dtype == torch::kFloat;
  attended_keys_ = 0;
  const int64_t R = static_cast<int64_t>(rows.size());
  std::vector<int64_t> start(R);
  int64_t queries = 0;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t context = static_cast<int64_t>(rows[r].slots.size());
    CLINRL_CHECK(rows[r].query_count >= 1 && rows[r].query_count <= context,
                 "PagedAttention: {} queries over {} keys", rows[r].query_count,
                 context);
    start[r] = queries;
    queries += rows[r].query_count;
    attended_keys_ += rows[r].query_count * context;
  }
  total_queries_ = queries;
  // Groups: rows by query count, then context, longest first; a row starts
  // a new group when it is under half the group's longest in either.
  std::vector<int64_t> order(R);
  std::iota(order.begin(), order.end(), 0);
  auto context_of = [&](int64_t r) {
    return static_cast<int64_t>(rows[r].slots.size());
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (rows[a].query_count != rows[b].query_count) {
      return rows[a].query_count > rows[b].query_count;
    }
    return context_of(a) > context_of(b);
  });
  std::vector<std::vector<int64_t>> members;
  for (int64_t r : order) {
    if (pool_reads) {
      const int64_t offset = static_cast<int64_t>(pooled_.slots.size());
      const int64_t n = rows[r].query_count, past = context_of(r) - n;
      for (int64_t t = 0; t < n; ++t) {
        pooled_.query.push_back(start[r] + t);
        pooled_.offsets.push_back(offset);
        pooled_.lengths.push_back(past + t + 1);
      }
      pooled_.slots.insert(pooled_.slots.end(), rows[r].slots.begin(),
                           rows[r].slots.end());
      continue;
    }
    if (members.empty() ||
        2 * rows[r].query_count < rows[members.back()[0]].query_count ||
        2 * context_of(r) < context_of(members.back()[0])) {
      members.emplace_back();
    }
    members.back().push_back(r);
  }
  const bool in_packed_order =
      pooled_.query.empty() && std::is_sorted(order.begin(), order.end());
  for (const auto& m : members) {
    Group g;
    g.rows = static_cast<int64_t>(m.size());
    for (int64_t r : m) {
      g.queries = std::max(g.queries, rows[r].query_count);
      g.context = std::max(g.context, context_of(r));
    }
    const int64_t T = g.queries, L = g.context;
    torch::Tensor query_index = torch::empty({g.rows * T}, torch::kLong);
    torch::Tensor key_slots = torch::empty({g.rows * L}, torch::kLong);
    torch::Tensor mask = torch::zeros({g.rows, 1, T, L}, torch::kBool);
    std::vector<int64_t> take, dest;
    bool padded = false;
    int64_t* qi = query_index.data_ptr<int64_t>();
    int64_t* ks = key_slots.data_ptr<int64_t>();
    bool* mk = mask.data_ptr<bool>();
    for (int64_t i = 0; i < g.rows; ++i) {
      const PagedRow& row = rows[m[i]];
      const int64_t n = row.query_count;
      const int64_t context = context_of(m[i]), past = context - n;
      padded |= n != T || context != L;
      // Padding queries repeat the row's last query, padding keys its last
      // key; the mask hides the padding keys, and padding outputs are
      // dropped.
      for (int64_t t = 0; t < T; ++t) {
        const int64_t real = std::min(t, n - 1);
        qi[i * T + t] = start[m[i]] + real;
        std::fill(mk + (i * T + t) * L, mk + (i * T + t) * L + past + real + 1,
                  true);
        if (t < n) {
          take.push_back(i * T + t);
          dest.push_back(start[m[i]] + t);
        }
      }
      std::copy(row.slots.begin(), row.slots.end(), ks + i * L);
      std::fill(ks + i * L + context, ks + (i + 1) * L, row.slots.back());
    }
    g.query_index = query_index.to(device);
    g.key_slots = key_slots.to(device);
    // One query per row over every one of its keys, no padding: no mask.
    if (T > 1 || padded) g.mask = mask.to(device);
    if (padded) g.take = torch::tensor(take, torch::kLong).to(device);
    if (padded || members.size() > 1 || !in_packed_order) {
      g.dest = torch::tensor(dest, torch::kLong).to(device);
    }
    groups_.push_back(std::move(g));
  }
}

at::Tensor PagedAttention::Attend(const at::Tensor& q,
                                  const at::Tensor& pool_keys,
                                  const at::Tensor& pool_values) {
  const int64_t H = q.size(1), D = q.size(2);
  const int64_t Hkv = pool_keys.size(1);
  const bool gqa = H != Hkv;
  if (!key_buffer_.defined() ||
      key_buffer_.scalar_type() != pool_keys.scalar_type() ||
      key_buffer_.device() != pool_keys.device()) {
    key_buffer_ = torch::empty({0}, pool_keys.options());
    value_buffer_ = torch::empty({0}, pool_values.options());
  }
  torch::Tensor out;
  if (!pooled_.query.empty()) {
    const torch::Tensor queries = q.contiguous();
    out = torch::empty({total_queries_, H, D}, queries.options());
    PooledAttention(queries.data_ptr<float>(), pool_keys.data_ptr<float>(),
                    pool_values.data_ptr<float>(), H, Hkv, D, pooled_.query,
                    pooled_.offsets, pooled_.lengths, pooled_.slots,
                    out.data_ptr<float>());
  }
  for (const Group& g : groups_) {
    const int64_t R = g.rows, T = g.queries, L = g.context;
    // Emptied first so that index_select_out reuses the storage at any size
    // instead of warning about a resize.
    key_buffer_.resize_({0});
    value_buffer_.resize_({0});
    at::index_select_out(key_buffer_, pool_keys, 0, g.key_slots);
    at::index_select_out(value_buffer_, pool_values, 0, g.key_slots);
    // [R * L, Hkv, D] viewed as [R, Hkv, L, D]: the layout the fused CPU
    // kernel reads without a copy.
    const torch::Tensor keys = key_buffer_.view({R, L, Hkv, D}).transpose(1, 2);
    const torch::Tensor values =
        value_buffer_.view({R, L, Hkv, D}).transpose(1, 2);
    const torch::Tensor queries =
        q.index_select(0, g.query_index).view({R, T, H, D}).transpose(1, 2);
    torch::Tensor attended =
        at::scaled_dot_product_attention(queries, keys, values,
                                         MaskOrNone(g.mask), /*dropout_p=*/0.0,
                                         /*is_causal=*/false,
                                         /*scale=*/std::nullopt,
                                         /*enable_gqa=*/gqa)
            .transpose(1, 2)
            .reshape({R * T, H, D});
    if (!g.dest.defined()) return attended;  // the only group, in order
    if (g.take.defined()) attended = attended.index_select(0, g.take);
    if (!out.defined())
      out = torch::empty({total_queries_, H, D}, attended.options());
    out.index_copy_(0, g.dest, attended);
  }
  return out;
}

}  // namespace clinrl::policy
