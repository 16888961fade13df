#include "trainer/metrics_logger.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <vector>

#include "core/monotonic_clock.h"

namespace clinrl::trainer {

namespace {
nlohmann::json Record(const std::map<std::string, double>& metrics) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : metrics) {
    // JSON has no NaN/Inf; write null so readers see a gap, not garbage.
    out[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
  }
  return out;
}
}  // namespace

MetricsLogger::MetricsLogger(const std::string& path)
    : writer_(std::make_unique<JsonlWriter>(path)),
      start_s_(MonotonicSeconds()) {}

void MetricsLogger::Log(int64_t step, const std::string& stage,
                        const std::map<std::string, double>& metrics) {
  nlohmann::json line = Record(metrics);
  line["step"] = step;
  line["stage"] = stage;
  line["time_s"] = MonotonicSeconds() - start_s_;
  writer_->Write(line);
}

void MetricsLogger::LogEval(int64_t step, const std::string& split,
                            const std::map<std::string, double>& metrics) {
  nlohmann::json line = Record(metrics);
  line["step"] = step;
  line["eval"] = split;
  line["time_s"] = MonotonicSeconds() - start_s_;
  writer_->Write(line);
}

std::string MetricsLogger::ConsoleLine(
    int64_t step, const std::string& stage,
    const std::map<std::string, double>& metrics) {
  std::string line = fmt::format("step {:>5} {:<4} |", step, stage);
  auto get = [&](const char* key, double* v) {
    auto it = metrics.find(key);
    if (it == metrics.end()) return false;
    *v = it->second;
    return true;
  };
  double v = 0, s = 0;
  if (get("reward/mean", &v)) {
    line += get("reward/std", &s) ? fmt::format(" reward {:.3f}±{:.3f}", v, s)
                                  : fmt::format(" reward {:.3f}", v);
  }
  const std::vector<std::pair<const char*, const char*>> shown = {
      {"accuracy", " acc {:.3f}"},
      {"loss", " loss {:.4f}"},
      {"kl", " kl {:.4f}"},
      {"entropy", " ent {:.3f}"},
      {"clip_frac/low", " clip {:.3f}"},
      {"clip_frac/high", "/{:.3f}"},
      {"groups/dropped_frac", " drop {:.2f}"},
      {"length/mean", " len {:.1f}"},
      {"turns/mean", " turns {:.2f}"},
      {"throughput/rollout_tokens_per_s", " roll {:.0f} tok/s"},
      {"throughput/train_tokens_per_s", " train {:.0f} tok/s"},
      {"lr", " lr {:.2e}"},
  };
  for (const auto& [key, format] : shown) {
    if (get(key, &v)) line += fmt::format(fmt::runtime(format), v);
  }
  return line;
}

}  // namespace clinrl::trainer
