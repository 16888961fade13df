#include "report/report_builder.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "core/atomic_file.h"
#include "core/error.h"
#include "report/report_assets.h"
#include "report/run_metrics.h"

namespace clinrl::report {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json ReadJsonFile(const std::string& path) {
  const std::string text = ReadFile(path);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    throw BadRequest(fmt::format("{}: not valid JSON", path));
  }
  return value;
}

std::string RunName(const std::string& dir, const json& config) {
  if (config.is_object() && config.contains("run") &&
      config["run"].is_object() && config["run"].contains("name") &&
      config["run"]["name"].is_string()) {
    return config["run"]["name"].get<std::string>();
  }
  fs::path p(dir);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

json RunData(const std::string& dir, const TrajectoryDigestOptions& options) {
  if (!fs::is_directory(dir)) {
    throw BadRequest(
        fmt::format("run directory: got '{}', expected a folder written by "
                    "`clinrl train` (with metrics.jsonl)",
                    dir));
  }
  const std::string metrics_path = dir + "/metrics.jsonl";
  if (!fs::exists(metrics_path)) {
    throw BadRequest(fmt::format(
        "run directory '{}': metrics.jsonl is missing; expected the metrics "
        "of a `clinrl train` run",
        dir));
  }
  json run = json::object();
  const std::string config_path = dir + "/config.json";
  run["config"] = fs::exists(config_path) ? ReadJsonFile(config_path) : json();
  run["name"] = RunName(dir, run["config"]);
  const std::string summary_path = dir + "/summary.json";
  run["summary"] =
      fs::exists(summary_path) ? ReadJsonFile(summary_path) : json();
  run["metrics"] = RunMetricsJson(ReadRunMetrics(metrics_path));
  const std::string trajectories_path = dir + "/trajectories.jsonl";
  run["trajectories"] = fs::exists(trajectories_path)
                            ? TrajectoryDigestJson(ReadTrajectoryDigest(
                                  trajectories_path, options))
                            : TrajectoryDigestJson(TrajectoryDigest{});
  return run;
}

// The document title must not let run names inject markup.
std::string EscapeHtml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

json BuildReportData(const ReportOptions& options) {
  if (options.run_dirs.empty()) {
    throw BadRequest("run_dirs: expected at least one run directory");
  }
  if (options.trajectories.max_transcripts < 0) {
    throw BadRequest(fmt::format("max_transcripts: got {}, expected 0 or more",
                                 options.trajectories.max_transcripts));
  }
  if (options.trajectories.max_message_chars < 0) {
    throw BadRequest(
        fmt::format("max_message_chars: got {}, expected 0 (no limit) or more",
                    options.trajectories.max_message_chars));
  }
  json runs = json::array();
  std::map<std::string, int> seen;
  for (const std::string& dir : options.run_dirs) {
    json run = RunData(dir, options.trajectories);
    // Runs compared across out_dirs often share run.name; the page tells
    // them apart by name.
    const int n = ++seen[run["name"].get<std::string>()];
    if (n > 1)
      run["name"] = fmt::format("{} ({})", run["name"].get<std::string>(), n);
    runs.push_back(std::move(run));
  }
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  return {{"generated_unix_s", static_cast<int64_t>(now)},
          {"max_transcripts", options.trajectories.max_transcripts},
          {"runs", std::move(runs)}};
}

std::string RenderReportHtml(const json& data) {
  const std::string text =
      data.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string safe;
  safe.reserve(text.size() + text.size() / 64);
  // '<' only occurs inside JSON strings, where \u003c means the same.
  for (char c : text) {
    if (c == '<') {
      safe += "\\u003c";
    } else {
      safe += c;
    }
  }
  std::string title = "clinrl report";
  if (data.contains("runs") && !data["runs"].empty()) {
    title += ": " + data["runs"][0].value("name", std::string());
    if (data["runs"].size() > 1) {
      title += fmt::format(" (+{} compared)", data["runs"].size() - 1);
    }
  }
  std::string html;
  html.reserve(safe.size() + 200000);
  html +=
      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html +=
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\">\n";
  html += "<title>" + EscapeHtml(title) + "</title>\n<style>\n";
  html += ReportPageStyle();
  html +=
      "</style>\n</head>\n<body>\n<div id=\"app\">Loading report...</div>\n";
  html += "<script id=\"clinrl-data\" type=\"application/json\">";
  html += safe;
  html += "</script>\n<script>\n";
  html += ReportPageScript();
  html += "</script>\n</body>\n</html>\n";
  return html;
}

std::string WriteReport(const ReportOptions& options) {
  const json data = BuildReportData(options);
  const std::string out = options.out_path.empty()
                              ? options.run_dirs.front() + "/report.html"
                              : options.out_path;
  WriteFileAtomic(out, RenderReportHtml(data));
  return out;
}

}  // namespace clinrl::report
