// `clinrl bench generate`: batched KV-cache generation on a ~22M-parameter
// Qwen2-shaped model (docs/policy.md; `--model` for another shape, `--device`
// and `--precision` for a GPU in bf16), against the GEMM rate of the same
// process and against decoding that recomputes the whole sequence.
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "bench/bench_model.h"
#include "bench/bench_registry.h"
#include "bench/device_memory.h"
#include "bench/gemm_peak.h"
#include "policy/generator.h"
#include "policy/precision.h"
#include "policy/transformer.h"

namespace clinrl::bench {
namespace {

using policy::ModelConfig;

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

std::vector<std::vector<int64_t>> RandomPrompts(int64_t count, int64_t min_len,
                                                int64_t max_len, int64_t vocab,
                                                uint64_t seed) {
  policy::SequenceRng rng(seed, 0);
  std::vector<std::vector<int64_t>> prompts(count);
  for (auto& p : prompts) {
    const int64_t len =
        min_len + static_cast<int64_t>(rng.Next() % (max_len - min_len + 1));
    for (int64_t t = 0; t < len; ++t) {
      p.push_back(static_cast<int64_t>(rng.Next() % vocab));
    }
  }
  return prompts;
}

nlohmann::json RunGenerateBench(const BenchOptions& options) {
  const bool quick = options.quick;
  const torch::Device device =
      policy::ParseDevice(StringOption(options, "device", "cpu"), "--device");
  const std::string precision_name =
      StringOption(options, "precision", "fp32", {"fp32", "bf16"});
  const policy::Precision precision =
      policy::ParsePrecision(precision_name, "--precision");
  const int64_t threads = policy::SetComputeThreads(options.threads);
  const GemmPeak peak = MeasureModelPeak(
      threads, device, precision == policy::Precision::kBf16, quick);
  std::cout << "device " << device.str() << ", threads " << threads << ", "
            << peak.dtype << " GEMM peak " << peak.gflops << " GFLOP/s"
            << std::endl;

  const ModelConfig config = BenchModel(options);
  policy::Transformer model(config);
  model->ResetParameters(7);
  model->to(device);
  model->set_precision(precision);
  model->eval();
  torch::NoGradGuard no_grad;
  std::cout << "model: " << config.ParameterCount() << " parameters, "
            << config.ToJson().dump() << std::endl;

  const int64_t new_tokens = quick ? 16 : 128;
  policy::SamplingParams sampling;
  sampling.temperature = 1.0;
  sampling.top_p = 0.95;
  sampling.max_new_tokens = new_tokens;
  sampling.seed = 1;

  // Warm-up (thread pool, allocator).
  policy::Generate(model, RandomPrompts(2, 8, 8, config.vocab_size, 99),
                   sampling);

  // Batch 1.
  policy::GenerationStats s1;
  auto t0 = std::chrono::steady_clock::now();
  policy::Generate(model, RandomPrompts(1, 64, 64, config.vocab_size, 1),
                   sampling, nullptr, &s1);
  const double batch1_s = Since(t0);
  const double tps1 = s1.generated_tokens / batch1_s;
  std::cout << "batch 1: " << s1.generated_tokens << " tokens in " << batch1_s
            << " s" << std::endl;

  // Batch 32, variable prompt lengths.
  const int64_t batch = IntOption(options, "batch", quick ? 8 : 32);
  policy::GenerationStats s32;
  t0 = std::chrono::steady_clock::now();
  policy::Generate(model, RandomPrompts(batch, 32, 64, config.vocab_size, 2),
                   sampling, nullptr, &s32);
  const double batch32_s = Since(t0);
  const double tps32 = s32.generated_tokens / batch32_s;
  const double decode_flops =
      s32.decode_row_steps * TokenFlops(config, 0, true) +
      TokenFlops(config, s32.decode_attended_keys, false) -
      TokenFlops(config, 0, false);
  const double decode_gflops = decode_flops / s32.decode_seconds / 1e9;
  std::cout << "batch " << batch << ": " << s32.generated_tokens
            << " tokens in " << batch32_s << " s (decode " << s32.decode_seconds
            << " s, " << decode_gflops << " GFLOP/s)" << std::endl;

  // Prefill: one pass over a batch of prompts, logits of the last slot only,
  // as Generate does. Best of three.
  const int64_t pf_batch = quick ? 2 : 8, pf_len = quick ? 32 : 128;
  const auto pf_ids =
      torch::randint(config.vocab_size, {pf_batch, pf_len}, torch::kLong)
          .to(device);
  double prefill_s = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    policy::KvCache cache = model->MakeCache(pf_batch, pf_len);
    t0 = std::chrono::steady_clock::now();
    const auto h = model->Hidden(pf_ids, {}, {}, &cache);
    const auto logits = model->Logits(h.select(1, pf_len - 1));
    SynchronizeDevice(device);
    prefill_s = std::min(prefill_s, Since(t0));
  }
  // Causal attention: query t attends t + 1 keys.
  const double causal_keys = pf_batch * pf_len * (pf_len + 1) / 2.0;
  const double prefill_flops =
      pf_batch * pf_len * TokenFlops(config, 0, false) +
      TokenFlops(config, causal_keys, false) - TokenFlops(config, 0, false) +
      pf_batch * 2.0 * config.vocab_size * config.hidden_size;
  const double prefill_gflops = prefill_flops / prefill_s / 1e9;
  std::cout << "prefill " << pf_batch << "x" << pf_len << ": " << prefill_s
            << " s, " << prefill_gflops << " GFLOP/s" << std::endl;

  // KV cache against recomputing every step, greedy so both pick the same
  // tokens.
  const int64_t kv_prompt = quick ? 16 : 64, kv_new = quick ? 32 : 256;
  policy::SamplingParams greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = kv_new;
  const auto kv_prompts =
      RandomPrompts(1, kv_prompt, kv_prompt, config.vocab_size, 3);
  t0 = std::chrono::steady_clock::now();
  const auto cached = policy::Generate(model, kv_prompts, greedy);
  const double cached_s = Since(t0);
  std::vector<int64_t> seq = kv_prompts[0];
  std::vector<int64_t> recomputed;
  t0 = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < kv_new; ++step) {
    const auto ids = torch::tensor(seq, torch::kLong)
                         .view({1, (int64_t)seq.size()})
                         .to(device);
    const auto h = model->Hidden(ids);
    const int64_t next =
        model->Logits(h.select(1, h.size(1) - 1)).argmax(-1).item<int64_t>();
    seq.push_back(next);
    recomputed.push_back(next);
  }
  const double recompute_s = Since(t0);
  const double speedup = recompute_s / cached_s;
  std::cout << "kv cache: " << cached_s << " s cached, " << recompute_s
            << " s recomputing, speedup " << speedup << std::endl;

  // libgomp reads OMP_WAIT_POLICY once at start-up; on a machine shared with
  // other work it changes small-op timings by an order of magnitude, so the
  // figures say which policy they ran under.
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  return {
      {"device", device.str()},
      {"precision", precision_name},
      {"threads", threads},
      {"omp_wait_policy", wait_policy != nullptr ? wait_policy : "default"},
      {"parameters", config.ParameterCount()},
      {"config", config.ToJson()},
      {"tokens_per_s_batch1", tps1},
      {fmt::format("tokens_per_s_batch{}", batch), tps32},
      {"batch_size", batch},
      {"new_tokens", new_tokens},
      {"kv_cache_speedup_256", speedup},
      {"kv_cache_new_tokens", kv_new},
      {"kv_recompute_matches_cached", recomputed == cached[0].token_ids},
      {"prefill_gflops", prefill_gflops},
      {"prefill_shape", {pf_batch, pf_len}},
      {fmt::format("decode_gflops_batch{}", batch), decode_gflops},
      {"gemm_peak_gflops", peak.gflops},
      {"prefill_fraction_of_peak", prefill_gflops / peak.gflops},
      {"decode_fraction_of_peak", decode_gflops / peak.gflops},
      {"quick", quick},
  };
}

}  // namespace

CLINRL_REGISTER_BENCH(generate,
                      "batched KV-cache generation, ~22M-parameter model",
                      RunGenerateBench,
                      {"precision", "fp32 or bf16 (bfloat16 autocast)"},
                      {"device", "cpu, cuda or cuda:N"},
                      {"model",
                       "a HF config.json or a run config with "
                       "policy.init"});

}  // namespace clinrl::bench
