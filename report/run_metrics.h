// metrics.jsonl of one run as columns for the report: one row per training
// step (SFT and GRPO lines, "step" and "stage") and the evaluation records
// ("eval": split) kept apart, so the page draws every metric against step
// and marks where the validation and test evaluations happened.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::report {

struct EvalRecord {
  int64_t step = 0;
  std::string split;
  nlohmann::json metrics = nlohmann::json::object();  // key -> number|null
};

struct RunMetrics {
  std::vector<int64_t> steps;
  std::vector<std::string> stages;  // one per step row
  std::vector<double> time_s;       // NaN where a line has none
  // keys[i] names values[i]; values[i][row] is NaN where row lacks the key.
  std::vector<std::string> keys;
  std::vector<std::vector<double>> values;
  std::vector<EvalRecord> evals;
  int64_t bad_lines = 0;  // lines that were not JSON objects, skipped
};

// Reads `path` (a torn last line is skipped, as in every JSONL reader, and
// so is, with a warning, any line that is not a JSON object: bad_lines).
// Steps come out increasing: lines a resumed run replays replace the rows
// of the same and later steps, and a replayed evaluation the earlier one.
// Errors name the file, line and field: a line without an integer "step",
// or a metric that is neither a number nor null.
RunMetrics ReadRunMetrics(const std::string& path);

// The columns as the page reads them: {"step": [...], "stage": [...],
// "stages": [...], "time_s": [...], "keys": [...], "values": [[...]...],
// "evals": [{"step", "split", "metrics"}...]}; numbers rounded to
// `significant_digits` (the page draws them, nobody reads the 17th digit),
// NaN written as null.
nlohmann::json RunMetricsJson(const RunMetrics& metrics,
                              int significant_digits = 6);

// `value` rounded to `digits` significant decimal digits.
double RoundSignificant(double value, int digits);

}  // namespace clinrl::report
