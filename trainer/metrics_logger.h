// Per-step metrics: one JSON line per step in metrics.jsonl (flushed at once,
// so a crash loses at most the step being written) and one readable console
// line with the figures a person watches during a run.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/jsonl.h"

namespace clinrl::trainer {

class MetricsLogger {
 public:
  // Appends to `path` (a resumed run continues the same file).
  explicit MetricsLogger(const std::string& path);

  // Writes {"step": step, "stage": stage, "time_s": ..., ...metrics}.
  void Log(int64_t step, const std::string& stage,
           const std::map<std::string, double>& metrics);
  // Same, for evaluation records: {"eval": split, ...}.
  void LogEval(int64_t step, const std::string& split,
               const std::map<std::string, double>& metrics);

  // "step 12 grpo | reward 0.41±0.32 acc 0.38 kl 0.003 ..." from the keys
  // present, in a fixed order; unknown keys are left to metrics.jsonl.
  static std::string ConsoleLine(int64_t step, const std::string& stage,
                                 const std::map<std::string, double>& metrics);

 private:
  std::unique_ptr<JsonlWriter> writer_;
  double start_s_;
};

}  // namespace clinrl::trainer
