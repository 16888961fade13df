#include "report/run_metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <map>

#include "core/error.h"
#include "core/jsonl.h"

namespace clinrl::report {

namespace {

using nlohmann::json;

// Keys of a metrics line that are not metrics.
bool IsBookkeeping(const std::string& key) {
  return key == "step" || key == "stage" || key == "eval" || key == "time_s";
}

double MetricValue(const json& v, const std::string& where,
                   const std::string& key) {
  if (v.is_null()) return NAN;
  if (!v.is_number()) {
    throw BadRequest(fmt::format("{}: {}: expected a number or null, got {}",
                                 where, key, v.dump()));
  }
  return v.get<double>();
}

json Rounded(double v, int digits) {
  return std::isfinite(v) ? json(RoundSignificant(v, digits)) : json();
}

}  // namespace

double RoundSignificant(double value, int digits) {
  if (!std::isfinite(value) || value == 0.0) return value;
  const std::string text = fmt::format("{:.{}g}", value, digits);
  return std::strtod(text.c_str(), nullptr);
}

RunMetrics ReadRunMetrics(const std::string& path) {
  RunMetrics out;
  std::map<std::string, size_t> column;  // key -> index in keys/values
  // A damaged line (a crash mid-write, then a resumed run appending) is
  // skipped and counted: the rest of the run is still worth seeing.
  out.bad_lines =
      ReadJsonl(
          path,
          [&](const json& line, int64_t line_number) {
            const std::string where = fmt::format("{}:{}", path, line_number);
            if (!line.is_object()) {
              throw BadRequest(fmt::format("{}: expected a JSON object, got {}",
                                           where, line.dump().substr(0, 80)));
            }
            auto step_it = line.find("step");
            if (step_it == line.end() || !step_it->is_number_integer()) {
              throw BadRequest(fmt::format(
                  "{}: step: expected an integer step number, got {}", where,
                  step_it == line.end() ? "nothing" : step_it->dump()));
            }
            const int64_t step = step_it->get<int64_t>();
            if (line.contains("eval")) {
              const json& split = line["eval"];
              if (!split.is_string()) {
                throw BadRequest(fmt::format(
                    "{}: eval: expected the split name (a string), got {}",
                    where, split.dump()));
              }
              EvalRecord e{step, split.get<std::string>(), json::object()};
              for (auto it = line.begin(); it != line.end(); ++it) {
                if (IsBookkeeping(it.key())) continue;
                e.metrics[it.key()] = MetricValue(it.value(), where, it.key());
              }
              // The same evaluation replayed after a resume replaces the first.
              for (auto it = out.evals.begin(); it != out.evals.end(); ++it) {
                if (it->step == e.step && it->split == e.split) {
                  out.evals.erase(it);
                  break;
                }
              }
              out.evals.push_back(std::move(e));
              return;
            }
            // A resumed run replays the steps after its last checkpoint: like
            // TensorBoard, the replayed lines supersede the rows they repeat.
            while (!out.steps.empty() && out.steps.back() >= step) {
              out.steps.pop_back();
              out.stages.pop_back();
              out.time_s.pop_back();
              for (auto& values : out.values) {
                if (values.size() > out.steps.size())
                  values.resize(out.steps.size());
              }
            }
            const size_t row = out.steps.size();
            out.steps.push_back(step);
            const json& stage =
                line.contains("stage") ? line["stage"] : json("");
            if (!stage.is_string()) {
              throw BadRequest(fmt::format(
                  "{}: stage: expected a stage name (a string), got {}", where,
                  stage.dump()));
            }
            out.stages.push_back(stage.get<std::string>());
            out.time_s.push_back(
                line.contains("time_s")
                    ? MetricValue(line["time_s"], where, "time_s")
                    : NAN);
            for (auto it = line.begin(); it != line.end(); ++it) {
              if (IsBookkeeping(it.key())) continue;
              auto [col, added] = column.emplace(it.key(), out.keys.size());
              if (added) {
                out.keys.push_back(it.key());
                out.values.emplace_back(row, NAN);  // absent in the rows before
              }
              std::vector<double>& values = out.values[col->second];
              values.resize(row, NAN);
              values.push_back(MetricValue(it.value(), where, it.key()));
            }
          },
          BadJsonlLine::kSkip)
          .bad_lines;
  for (auto& values : out.values) values.resize(out.steps.size(), NAN);
  return out;
}

json RunMetricsJson(const RunMetrics& m, int significant_digits) {
  json out = json::object();
  out["step"] = m.steps;
  // Stage names once, rows as indices: 10,000 repeated "grpo" strings would
  // be most of the column.
  std::vector<std::string> stage_names;
  std::map<std::string, int> stage_index;
  json stage_rows = json::array();
  for (const std::string& s : m.stages) {
    auto [it, added] =
        stage_index.emplace(s, static_cast<int>(stage_names.size()));
    if (added) stage_names.push_back(s);
    stage_rows.push_back(it->second);
  }
  out["stages"] = stage_names;
  out["stage"] = std::move(stage_rows);
  json time = json::array();
  for (double t : m.time_s) time.push_back(Rounded(t, significant_digits));
  out["time_s"] = std::move(time);
  out["keys"] = m.keys;
  json values = json::array();
  for (const auto& column : m.values) {
    json c = json::array();
    for (double v : column) c.push_back(Rounded(v, significant_digits));
    values.push_back(std::move(c));
  }
  out["values"] = std::move(values);
  json evals = json::array();
  for (const EvalRecord& e : m.evals) {
    json metrics = json::object();
    for (auto it = e.metrics.begin(); it != e.metrics.end(); ++it) {
      metrics[it.key()] = it->is_number()
                              ? Rounded(it->get<double>(), significant_digits)
                              : json();
    }
    evals.push_back({{"step", e.step},
                     {"split", e.split},
                     {"metrics", std::move(metrics)}});
  }
  out["evals"] = std::move(evals);
  out["bad_lines"] = m.bad_lines;
  return out;
}

}  // namespace clinrl::report
