#include "bench/bench_model.h"

#include <fstream>
#include <iostream>

#include "core/error.h"
#include "policy/transformer.h"

namespace clinrl::bench {

ModelBenchSetup SetUpModelBench(const BenchOptions& options) {
  ModelBenchSetup s;
  s.device =
      policy::ParseDevice(StringOption(options, "device", "cpu"), "--device");
  s.precision_name =
      StringOption(options, "precision", "fp32", {"fp32", "bf16"});
  s.precision = policy::ParsePrecision(s.precision_name, "--precision");
  s.threads = policy::SetComputeThreads(options.threads);
  // MFU is against the rate of the dtype the products run in.
  s.peak =
      MeasureModelPeak(s.threads, s.device,
                       s.precision == policy::Precision::kBf16, options.quick);
  std::cout << "device " << s.device.str() << ", threads " << s.threads << ", "
            << s.peak.dtype << " GEMM peak " << s.peak.gflops << " GFLOP/s";
  if (s.peak.packed_gflops > 0) {
    std::cout << " (library " << s.peak.library_gflops << ", packed "
              << s.peak.packed_gflops << ")";
  }
  std::cout << std::endl;
  return s;
}

policy::ModelConfig BenchModel(const BenchOptions& options) {
  const std::string path = StringOption(options, "model", "");
  if (path.empty()) return BenchModelConfig(options.quick);
  std::ifstream in(path);
  if (!in)
    throw NotFound(fmt::format("--model {}: cannot open the file", path));
  const nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    throw BadRequest(fmt::format("--model {}: not a JSON object", path));
  }
  nlohmann::json init = doc;
  std::string where = path;
  if (doc.contains("policy")) {
    const nlohmann::json& policy = doc["policy"];
    if (!policy.is_object() || !policy.contains("init") ||
        !policy["init"].is_object()) {
      throw BadRequest(fmt::format(
          "--model {}: a run config needs a policy.init object (a Hugging "
          "Face config.json) to benchmark",
          path));
    }
    init = policy["init"];
    where += ": policy.init";
  }
  // A run config leaves vocab_size to its tokenizer; the bench has none, so
  // `--opt vocab_size=N` gives it (151936 for Qwen2.5's).
  if (options.extra.count("vocab_size")) {
    init["vocab_size"] = IntOption(options, "vocab_size", 0);
  }
  if (!init.contains("vocab_size")) {
    throw BadRequest(
        fmt::format("--model {}: {} has no vocab_size; pass --opt vocab_size=N",
                    path, where));
  }
  return policy::ModelConfig::FromJson(init, where);
}

policy::ModelConfig BenchModelConfig(bool quick) {
  policy::ModelConfig c;
  c.model_type = "qwen2";
  c.hidden_size = quick ? 128 : 512;
  c.intermediate_size = quick ? 384 : 1536;
  c.num_hidden_layers = quick ? 2 : 6;
  c.num_attention_heads = quick ? 4 : 8;
  c.num_key_value_heads = 2;
  c.vocab_size = quick ? 512 : 8192;
  c.max_position_embeddings = 2048;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  return c;
}

double TokenFlops(const policy::ModelConfig& c, double keys, bool logits) {
  double f = 2.0 * c.LayerParameterCount();
  f += 4.0 * c.num_hidden_layers * c.num_attention_heads * c.HeadDim() * keys;
  if (logits) f += 2.0 * c.vocab_size * c.hidden_size;
  return f;
}

double SequenceForwardFlops(const policy::ModelConfig& c, double length) {
  // Position t attends to t + 1 keys: length (length + 1) / 2 in all.
  const double causal_keys = length * (length + 1) / 2;
  return length * TokenFlops(c, 0, true) + TokenFlops(c, causal_keys, false) -
         TokenFlops(c, 0, false);
}

}  // namespace clinrl::bench
