#include "policy/sampler.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::policy {

void SamplingParams::Validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature)) {
    throw BadRequest(fmt::format(
        "temperature: {} is not allowed; expected >= 0 (0 = greedy)",
        temperature));
  }
  if (top_k < 0) {
    throw BadRequest(fmt::format(
        "top_k: {} is not allowed; expected >= 0 (0 = off)", top_k));
  }
  if (!(top_p > 0 && top_p <= 1)) {
    throw BadRequest(
        fmt::format("top_p: {} is not allowed; expected in (0, 1]", top_p));
  }
  if (top_logprobs < -1) {
    throw BadRequest(fmt::format(
        "top_logprobs: {} is not allowed; expected -1 (off) or >= 0",
        top_logprobs));
  }
  if (max_new_tokens < 1) {
    throw BadRequest(fmt::format(
        "max_new_tokens: {} is not allowed; expected >= 1", max_new_tokens));
  }
  for (size_t i = 0; i < stop_strings.size(); ++i) {
    if (stop_strings[i].empty()) {
      throw BadRequest(
          fmt::format("stop_strings[{}]: the empty string is not allowed", i));
    }
  }
}

SamplingParams SamplingParams::FromJson(const nlohmann::json& doc,
                                        const std::string& where) {
  wire::Fields f(doc, where);
  SamplingParams p;
  p.temperature = f.Double("temperature", p.temperature);
  p.top_k = f.Int("top_k", p.top_k);
  p.top_p = f.Double("top_p", p.top_p);
  p.max_new_tokens = f.Int("max_new_tokens", p.max_new_tokens);
  p.seed = static_cast<uint64_t>(f.Int("seed", 0));
  if (f.Has("stop_token_ids")) p.stop_token_ids = f.IntArray("stop_token_ids");
  if (f.Has("stop")) {
    for (const auto& s : f.Array("stop")) {
      if (!s.is_string()) {
        throw BadRequest(
            fmt::format("{}.stop: expected strings, got {}", where, s.dump()));
      }
      p.stop_strings.push_back(s.get<std::string>());
    }
  }
  p.Validate();
  return p;
}

namespace {
uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

SequenceRng::SequenceRng(uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
  for (auto& s : s_) s = SplitMix64(&x);
}

uint64_t SequenceRng::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double SequenceRng::Uniform() {
  return static_cast<double>(Next() >> 11) * 0x1.0p-53;
}

namespace {

// Token ids of one row in descending logit order, ties by lower id: a
// stable least-significant-digit radix sort of the logits' bits, 4 passes of
// 8 bits over the row (a comparison sort costs log2(V) passes).
void SortDescending(const float* row, int64_t V, std::vector<uint32_t>* keys,
                    std::vector<int32_t>* order, std::vector<uint32_t>* key_tmp,
                    std::vector<int32_t>* order_tmp) {
  keys->resize(V);
  order->resize(V);
  key_tmp->resize(V);
  order_tmp->resize(V);
  for (int64_t v = 0; v < V; ++v) {
    uint32_t bits;
    std::memcpy(&bits, row + v, sizeof(bits));
    // Monotone in the float's value, then inverted: ascending keys are
    // descending logits.
    bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    (*keys)[v] = ~bits;
    (*order)[v] = static_cast<int32_t>(v);
  }
  for (int shift = 0; shift < 32; shift += 8) {
    int64_t count[257] = {0};
    for (int64_t v = 0; v < V; ++v) ++count[(((*keys)[v] >> shift) & 0xff) + 1];
    for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
    for (int64_t v = 0; v < V; ++v) {
      const int64_t to = count[((*keys)[v] >> shift) & 0xff]++;
      (*key_tmp)[to] = (*keys)[v];
      (*order_tmp)[to] = (*order)[v];
    }
    keys->swap(*key_tmp);
    order->swap(*order_tmp);
  }
}

// FilterTopKTopP on a CPU float32 [N, V] tensor: a radix sort per row, rows
// in parallel, masses summed in double. Each token's mass exp(logit - max)
// comes from one vectorised pass over the whole batch before the sorts.
at::Tensor FilterOnCpu(const at::Tensor& scaled_logits, int64_t top_k,
                       double top_p) {
  const at::Tensor in = scaled_logits.contiguous();
  const int64_t N = in.size(0), V = in.size(1);
  at::Tensor out =
      torch::full_like(in, -std::numeric_limits<float>::infinity());
  const at::Tensor masses = (in - std::get<0>(in.max(-1, true))).exp_();
  const float* src = in.data_ptr<float>();
  const float* mass = masses.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const int64_t keep_k = top_k > 0 && top_k < V ? top_k : V;
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint32_t> keys, key_tmp;
    std::vector<int32_t> order, order_tmp;
    for (int64_t r = begin; r < end; ++r) {
      const float* row = src + r * V;
      const float* row_mass = mass + r * V;
      SortDescending(row, V, &keys, &order, &key_tmp, &order_tmp);
      double total = 0;
      for (int64_t i = 0; i < keep_k; ++i) total += row_mass[order[i]];
      // Keep, in order, each token whose mass before it (renormalised over
      // the top-k) is below p; the first always.
      double before = 0;
      for (int64_t i = 0; i < keep_k; ++i) {
        if (i > 0 && before >= top_p * total) break;
        const int32_t id = order[i];
        dst[r * V + id] = row[id];
        before += row_mass[id];
      }
    }
  });
  return out;
}

}  // namespace

at::Tensor FilterTopKTopP(const at::Tensor& scaled_logits, int64_t top_k,
                          double top_p) {
  const int64_t V = scaled_logits.size(-1);
  const bool use_k = top_k > 0 && top_k < V;
  const bool use_p = top_p < 1.0;
  if (!use_k && !use_p) return scaled_logits;
  if (scaled_logits.device().is_cpu() && scaled_logits.dim() == 2 &&
      scaled_logits.scalar_type() == torch::kFloat) {
    return FilterOnCpu(scaled_logits, top_k, top_p);
  }
  constexpr int64_t kTopPCandidates = 1024;
  if (use_p && !use_k && V > 4 * kTopPCandidates) {
    // With a large vocabulary the nucleus is almost always among the top
    // thousand tokens: when those hold p of the mass in every row, only they
    // are sorted (a partial top-k instead of a full sort per row and step).
    auto [values, order] = torch::topk(scaled_logits, kTopPCandidates, -1,
                                       /*largest=*/true, /*sorted=*/true);
    const torch::Tensor probs =
        torch::exp(values - torch::logsumexp(scaled_logits, -1, true));
    const torch::Tensor mass = probs.cumsum(-1);
    if (mass.select(-1, kTopPCandidates - 1).min().item<double>() >= top_p) {
      const torch::Tensor keep = (mass - probs).lt(top_p);
      const torch::Tensor keep_orig =
          torch::zeros_like(scaled_logits, torch::kBool)
              .scatter(-1, order, keep);
      return scaled_logits.masked_fill(keep_orig.logical_not(),
                                       -std::numeric_limits<float>::infinity());
    }
  }
  // Stable descending sort: equal logits keep id order, so ties at the k-th
  // place resolve to the lower id every time.
  auto [sorted, order] = torch::sort(scaled_logits, /*stable=*/true, /*dim=*/-1,
                                     /*descending=*/true);
  torch::Tensor keep = torch::ones_like(sorted, torch::kBool);
  if (use_k) keep.narrow(-1, top_k, V - top_k).fill_(false);
  if (use_p) {
    const torch::Tensor probs = torch::softmax(
        sorted.masked_fill(keep.logical_not(),
                           -std::numeric_limits<float>::infinity()),
        -1);
    const torch::Tensor before = probs.cumsum(-1) - probs;
    keep &= before.lt(top_p);
  }
  const torch::Tensor keep_orig =
      torch::zeros_like(keep).scatter(-1, order, keep);
  return scaled_logits.masked_fill(keep_orig.logical_not(),
                                   -std::numeric_limits<float>::infinity());
}

namespace {

// The inverse CDF of SampleTokens on a GPU: the rows' uniforms (still drawn
// from each sequence's own stream) go to the device and only the picked ids
// and their log-probs come back, not [rows, vocab] probabilities per step.
SampledTokens SampleOnDevice(const torch::Tensor& scaled,
                             const torch::Tensor& filtered,
                             const std::vector<SequenceRng*>& rngs) {
  const int64_t N = scaled.size(0), V = scaled.size(1);
  std::vector<double> uniforms(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) uniforms[i] = rngs[i]->Uniform();
  const torch::Tensor u =
      torch::tensor(uniforms, torch::kFloat64).to(scaled.device()).view({N, 1});
  const torch::Tensor probs = torch::softmax(filtered, -1);
  const torch::Tensor cdf = probs.to(torch::kFloat64).cumsum(-1);
  // The first token whose partial sum exceeds u; rounding can leave u above
  // the last partial sum, and then the last token with mass is taken.
  const torch::Tensor ids_of = torch::arange(
      V, torch::TensorOptions().dtype(torch::kLong).device(scaled.device()));
  const torch::Tensor last_with_mass =
      torch::where(probs.gt(0), ids_of, torch::zeros_like(ids_of)).amax(-1);
  const torch::Tensor pick = torch::minimum(
      torch::searchsorted(cdf, u, /*out_int32=*/false, /*right=*/true)
          .squeeze(1),
      last_with_mass);
  const torch::Tensor lp = (scaled.gather(-1, pick.unsqueeze(1)).squeeze(1) -
                            torch::logsumexp(scaled, -1))
                               .cpu();
  const torch::Tensor ids = pick.cpu();
  SampledTokens out;
  out.ids.resize(N);
  out.logprobs.resize(N);
  for (int64_t i = 0; i < N; ++i) {
    out.ids[i] = ids[i].item<int64_t>();
    out.logprobs[i] = lp[i].item<float>();
  }
  return out;
}

}  // namespace

SampledTokens SampleTokens(const at::Tensor& logits,
                           const SamplingParams& params,
                           const std::vector<SequenceRng*>& rngs) {
  const int64_t N = logits.size(0);
  CLINRL_CHECK(static_cast<int64_t>(rngs.size()) == N,
               "SampleTokens: {} rngs for {} rows", rngs.size(), N);
  SampledTokens out;
  out.ids.resize(N);
  out.logprobs.resize(N);
  torch::Tensor lf = logits.to(torch::kFloat).contiguous();
  if (params.temperature <= 0) {
    const torch::Tensor ids = lf.argmax(-1);
    const torch::Tensor lp = (lf.gather(-1, ids.unsqueeze(-1)).squeeze(-1) -
                              torch::logsumexp(lf, -1))
                                 .cpu();
    const torch::Tensor ids_cpu = ids.cpu();
    for (int64_t i = 0; i < N; ++i) {
      out.ids[i] = ids_cpu[i].item<int64_t>();
      out.logprobs[i] = lp[i].item<float>();
    }
    return out;
  }
  const torch::Tensor scaled = lf / params.temperature;
  const torch::Tensor filtered =
      FilterTopKTopP(scaled, params.top_k, params.top_p);
  if (!lf.device().is_cpu()) return SampleOnDevice(scaled, filtered, rngs);
  const torch::Tensor lse = torch::logsumexp(scaled, -1).cpu();
  const torch::Tensor probs = torch::softmax(filtered, -1).cpu().contiguous();
  const torch::Tensor scaled_cpu = scaled.cpu().contiguous();
  const int64_t V = probs.size(1);
  for (int64_t i = 0; i < N; ++i) {
    const float* p = probs.data_ptr<float>() + i * V;
    const double u = rngs[i]->Uniform();
    // Inverse CDF; rounding can leave u above the last partial sum, in which
    // case the last token with mass is taken.
    double acc = 0;
    int64_t pick = -1, last_nonzero = 0;
    for (int64_t v = 0; v < V; ++v) {
      if (p[v] <= 0) continue;
      last_nonzero = v;
      acc += p[v];
      if (u < acc) {
        pick = v;
        break;
      }
    }
    if (pick < 0) pick = last_nonzero;
    out.ids[i] = pick;
    out.logprobs[i] =
        scaled_cpu.data_ptr<float>()[i * V + pick] - lse.data_ptr<float>()[i];
  }
  return out;
}

std::vector<TokenLogprobs> RawTokenLogprobs(const at::Tensor& logits,
                                            const std::vector<int64_t>& ids,
                                            const std::vector<int64_t>& top_k) {
  const int64_t N = logits.size(0), V = logits.size(1);
  CLINRL_CHECK(static_cast<int64_t>(ids.size()) == N &&
                   static_cast<int64_t>(top_k.size()) == N,
               "RawTokenLogprobs: {} ids and {} top_k for {} rows", ids.size(),
               top_k.size(), N);
  const torch::Tensor lp = torch::log_softmax(logits.to(torch::kFloat), -1);
  const torch::Tensor picked =
      lp.gather(-1,
                torch::tensor(ids, torch::kLong).to(lp.device()).unsqueeze(1))
          .squeeze(1)
          .cpu();
  const int64_t k = std::min(
      V, top_k.empty() ? int64_t{0}
                       : *std::max_element(top_k.begin(), top_k.end()));
  torch::Tensor top_values, top_ids;
  if (k > 0) {
    auto [values, order] = torch::topk(lp, k, -1, /*largest=*/true,
                                       /*sorted=*/true);
    top_values = values.cpu().contiguous();
    top_ids = order.cpu().contiguous();
  }
  std::vector<TokenLogprobs> out(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    out[i].logprob = picked[i].item<float>();
    const int64_t row_k = std::min(top_k[i], k);
    for (int64_t j = 0; j < row_k; ++j) {
      out[i].top_ids.push_back(top_ids.data_ptr<int64_t>()[i * k + j]);
      out[i].top_logprobs.push_back(top_values.data_ptr<float>()[i * k + j]);
    }
  }
  return out;
}

}  // namespace clinrl::policy
