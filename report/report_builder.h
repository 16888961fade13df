// `clinrl report`: one self-contained report.html for one run or several
// runs overlaid. The page is plain HTML with inline CSS and JavaScript
// (report/report_page.{css,js}) and the runs' data embedded as one JSON
// block, so it opens from disk with no network and nothing installed.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "report/trajectory_digest.h"

namespace clinrl::report {

struct ReportOptions {
  // The first run is the one reported on; the others are overlaid.
  std::vector<std::string> run_dirs;
  // Default: <first run dir>/report.html.
  std::string out_path;
  TrajectoryDigestOptions trajectories;
};

// The embedded data: {"generated_unix_s", "runs": [{"name", "config",
// "summary", "metrics", "trajectories"}...]}. A run directory needs
// metrics.jsonl; config.json, summary.json and trajectories.jsonl are used
// when present. Errors name the run directory and what is missing.
nlohmann::json BuildReportData(const ReportOptions& options);

// The page around `data`. Every '<' in the JSON is written as \u003c so no
// transcript text can close the <script> element that holds it.
std::string RenderReportHtml(const nlohmann::json& data);

// Builds and writes the report atomically (a reader never sees half a
// page, even while training refreshes it); returns the path written.
std::string WriteReport(const ReportOptions& options);

}  // namespace clinrl::report
