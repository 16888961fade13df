// `clinrl bench generate`: batched KV-cache generation on a ~22M-parameter
// Qwen2-shaped model (docs/policy.md; `--model` for another shape, `--device`
// and `--precision` for a GPU in bf16), against the GEMM rate of the same
// process and against decoding that recomputes the whole sequence.
#include <fmt/ranges.h>
#include <stdlib.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_model.h"
#include "bench/bench_registry.h"
#include "bench/copy_bandwidth.h"
#include "bench/device_memory.h"
#include "bench/gemm_peak.h"
#include "bench/op_profile.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "envs/child_process.h"
#include "policy/generator.h"
#include "policy/model_dir.h"
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

// Hugging Face transformers' generate as the peer (bench/peers/
// hf_generate.py, run by the venv's interpreter): it builds the random model
// of `config`, saves it into `dir`/model for clinrl to load (so both time
// the same weights), and times its own generate on the same prompts, same
// threads, device and dtype, sampled and greedy. Returns its JSON line.
nlohmann::json RunTransformersPeer(
    const ModelConfig& config,
    const std::map<int64_t, std::vector<std::vector<int64_t>>>& prompts,
    int64_t new_tokens, int64_t threads, const torch::Device& device, bool bf16,
    const std::string& dir) {
  WriteFileAtomic(dir + "/config.json", config.ToJson().dump());
  nlohmann::json by_batch = nlohmann::json::object();
  std::vector<std::string> batches;
  for (const auto& [batch, rows] : prompts) {
    by_batch[std::to_string(batch)] = rows;
    batches.push_back(std::to_string(batch));
  }
  WriteFileAtomic(dir + "/prompts.json", by_batch.dump());
  const std::string command = fmt::format(
      "{} {} --model {} --prompts {} --save {} --threads {} --device {} "
      "--dtype {} --batches {} --new-tokens {} 2>&1",
      ShellQuote(envs::AdapterPython()),
      ShellQuote(std::string(CLINRL_PEERS_DIR) + "/hf_generate.py"),
      ShellQuote(dir + "/config.json"), ShellQuote(dir + "/prompts.json"),
      ShellQuote(dir + "/model"), threads, device.is_cuda() ? "cuda" : "cpu",
      bf16 ? "bfloat16" : "float32", fmt::join(batches, ","), new_tokens);
  std::cout << "peer: " << command << std::endl;
  const nlohmann::json figures =
      nlohmann::json::parse(LastLineOf(command), nullptr, false);
  if (figures.is_discarded() || !figures.is_object()) {
    throw InternalError(
        "bench generate: the transformers peer printed no JSON line");
  }
  return figures;
}

double GreedyTokensPerSecond(policy::Transformer& model,
                             const std::vector<std::vector<int64_t>>& prompts,
                             int64_t new_tokens) {
  policy::SamplingParams greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = new_tokens;
  policy::GenerationStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  policy::Generate(model, prompts, greedy, nullptr, &stats);
  return stats.generated_tokens / Since(t0);
}

nlohmann::json RunGenerateBench(const BenchOptions& options) {
  const bool quick = options.quick;
  const ModelBenchSetup setup = SetUpModelBench(options);
  const torch::Device& device = setup.device;
  const std::string& precision_name = setup.precision_name;
  const policy::Precision precision = setup.precision;
  const int64_t threads = setup.threads;
  const GemmPeak& peak = setup.peak;

  const CopyBandwidth bandwidth = MeasureCopyBandwidth(
      device, quick ? int64_t{32} << 20 : int64_t{256} << 20,
      quick ? 0.2 : 1.0);
  std::cout << "copy bandwidth " << bandwidth.gbps << " GB/s" << std::endl;

  const ModelConfig config = BenchModel(options);
  const int64_t new_tokens = quick ? 16 : 128;
  const int64_t batch = IntOption(options, "batch", quick ? 8 : 32);
  const auto prompts1 = RandomPrompts(1, 64, 64, config.vocab_size, 1);
  const auto prompts_n = RandomPrompts(batch, 32, 64, config.vocab_size, 2);
  const bool bf16 = precision == policy::Precision::kBf16;
  const std::string peer =
      StringOption(options, "peer", "transformers", {"transformers", "none"});
  nlohmann::json hf;
  policy::Transformer model{nullptr};
  if (peer == "transformers") {
    const std::string dir =
        MakeBenchTempDir("bench", "creating a folder for the peer's model");
    try {
      hf = RunTransformersPeer(config, {{1, prompts1}, {batch, prompts_n}},
                               new_tokens, threads, device, bf16, dir);
      model = policy::LoadModel(dir + "/model");  // the peer's own weights
    } catch (...) {
      std::filesystem::remove_all(dir);
      throw;
    }
    std::filesystem::remove_all(dir);
  } else {
    model = policy::Transformer(config);
    model->ResetParameters(7);
  }
  model->to(device);
  model->set_precision(precision);
  model->eval();
  torch::NoGradGuard no_grad;
  std::cout << "model: " << config.ParameterCount() << " parameters, "
            << config.ToJson().dump() << std::endl;

  policy::SamplingParams sampling;
  sampling.temperature = 1.0;
  sampling.top_p = 0.95;
  sampling.max_new_tokens = new_tokens;
  sampling.seed = 1;

  // Warm-up (thread pool, allocator).
  policy::Generate(model, RandomPrompts(2, 8, 8, config.vocab_size, 99),
                   sampling);

  // Where decoding spends its time, before the timed runs (--profile on).
  nlohmann::json profiles;
  if (StringOption(options, "profile", "off", {"on", "off"}) == "on") {
    for (const auto* rows : {&prompts1, &prompts_n}) {
      const OpProfile profile =
          ProfileOps([&] { policy::Generate(model, *rows, sampling); });
      std::cout << "profile, batch " << rows->size() << ", " << new_tokens
                << " new tokens:\n"
                << profile.Table();
      profiles[std::to_string(rows->size())] = profile.ToJson();
    }
  }

  // Batch 1.
  policy::GenerationStats s1;
  auto t0 = std::chrono::steady_clock::now();
  policy::Generate(model, prompts1, sampling, nullptr, &s1);
  const double batch1_s = Since(t0);
  const double tps1 = s1.generated_tokens / batch1_s;
  std::cout << "batch 1: " << s1.generated_tokens << " tokens in " << batch1_s
            << " s" << std::endl;
  // Batch-1 decoding reads every weight once per token: the bandwidth
  // bound on its tokens/s (weights in the dtype the products read).
  int64_t weight_bytes = 0;
  for (const auto& p : model->parameters()) {
    weight_bytes += p.numel() * (bf16 ? 2 : p.element_size());
  }
  const double bound1 =
      bandwidth.gbps * 1e9 / static_cast<double>(weight_bytes);
  const double decode1 =
      s1.decode_seconds > 0 ? s1.decode_steps / s1.decode_seconds : 0.0;
  std::cout << "batch 1 decode " << decode1 << " tokens/s; bandwidth bound "
            << bound1 << " (" << decode1 / bound1 << " of it)" << std::endl;

  // Batch 32, variable prompt lengths.
  policy::GenerationStats s32;
  t0 = std::chrono::steady_clock::now();
  policy::Generate(model, prompts_n, sampling, nullptr, &s32);
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
  nlohmann::json out = {
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
      {"gemm_peak", peak.ToJson()},
      {"prefill_fraction_of_peak", prefill_gflops / peak.gflops},
      {"decode_fraction_of_peak", decode_gflops / peak.gflops},
      {"quick", quick},
      {"copy_bandwidth", bandwidth.ToJson()},
      {"weight_bytes", weight_bytes},
      {"decode_tokens_per_s_batch1", decode1},
      {"bandwidth_bound_tokens_per_s_batch1", bound1},
      {"decode_fraction_of_bandwidth_bound_batch1", decode1 / bound1},
  };
  if (!profiles.is_null()) out["profile"] = profiles;
  if (peer == "transformers") {
    // Greedy too, as the peer was timed both ways.
    const double greedy1 = GreedyTokensPerSecond(model, prompts1, new_tokens);
    const double greedy_n = GreedyTokensPerSecond(model, prompts_n, new_tokens);
    const std::string n = std::to_string(batch);
    out["peer"] = hf;
    out["tokens_per_s_batch1_greedy"] = greedy1;
    out["tokens_per_s_batch" + n + "_greedy"] = greedy_n;
    out["speedup_vs_hf_batch1"] =
        tps1 / hf.at("hf_tokens_per_s_batch1").get<double>();
    out["speedup_vs_hf_batch" + n] =
        tps32 / hf.at("hf_tokens_per_s_batch" + n).get<double>();
    out["speedup_vs_hf_batch1_greedy"] =
        greedy1 / hf.at("hf_tokens_per_s_batch1_greedy").get<double>();
    out["speedup_vs_hf_batch" + n + "_greedy"] =
        greedy_n / hf.at("hf_tokens_per_s_batch" + n + "_greedy").get<double>();
    std::cout << "against transformers: batch 1 " << out["speedup_vs_hf_batch1"]
              << "x sampled, " << out["speedup_vs_hf_batch1_greedy"]
              << "x greedy; batch " << n << " "
              << out["speedup_vs_hf_batch" + n] << "x sampled, "
              << out["speedup_vs_hf_batch" + n + "_greedy"] << "x greedy"
              << std::endl;
  }
  return out;
}

}  // namespace

CLINRL_REGISTER_BENCH(generate,
                      "batched KV-cache generation, ~22M-parameter model",
                      RunGenerateBench,
                      {"precision", "fp32 or bf16 (bfloat16 autocast)"},
                      {"device", "cpu, cuda or cuda:N"},
                      {"model",
                       "a HF config.json or a run config with "
                       "policy.init"},
                      {"peer",
                       "transformers (default: the same model in Hugging "
                       "Face generate, same run) or none"},
                      {"profile",
                       "on: print where decoding spends its time, op by op "
                       "(LibTorch's profiler), before the timed runs"});

}  // namespace clinrl::bench
