// The model the policy benchmarks run (about 22M parameters, Qwen2-shaped;
// a tiny one for --quick) and the arithmetic that turns their timings into
// GFLOP/s.
#pragma once

#include <torch/types.h>

#include <string>

#include "bench/bench_registry.h"
#include "bench/gemm_peak.h"
#include "policy/model_config.h"
#include "policy/precision.h"

namespace clinrl::bench {

policy::ModelConfig BenchModelConfig(bool quick);

// The model of `--model FILE` (a Hugging Face config.json, or a clinrl run
// config whose policy.init is one, such as configs/qwen2.5-0.5b.json), else
// BenchModelConfig(options.quick).
policy::ModelConfig BenchModel(const BenchOptions& options);

// What every model bench starts from: `--device` and `--precision` parsed,
// the intra-op threads set, and the GEMM peak its throughput is measured
// against (MeasureModelPeak), printed.
struct ModelBenchSetup {
  torch::Device device = torch::kCPU;
  policy::Precision precision = policy::Precision::kFp32;
  std::string precision_name;
  int64_t threads = 0;
  GemmPeak peak;
};
ModelBenchSetup SetUpModelBench(const BenchOptions& options);

// Floating-point operations (2 per multiply-add) of one token's forward pass
// through the layers (no embedding lookup), plus attention over `keys`
// earlier slots, plus the lm_head when `logits`.
double TokenFlops(const policy::ModelConfig& c, double keys, bool logits);

// Forward FLOPs of a whole causal sequence of `length` tokens with logits at
// every position.
double SequenceForwardFlops(const policy::ModelConfig& c, double length);

}  // namespace clinrl::bench
