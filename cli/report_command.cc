// `clinrl report RUN_DIR [--compare RUN_DIR2 ...] [--out FILE]`: writes the
// self-contained report.html of a run (docs/report.md).
#include <iostream>

#include "cli/command_registry.h"
#include "report/report_builder.h"

namespace clinrl::cli {
namespace {

void AddReportCommands(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "report",
      "write report.html: metric charts, evaluations, config diff and a "
      "trajectory browser, in one file that opens offline");
  auto options = std::make_shared<report::ReportOptions>();
  auto run_dir = std::make_shared<std::string>();
  auto compare = std::make_shared<std::vector<std::string>>();
  cmd->add_option("RUN_DIR", *run_dir, "run directory of `clinrl train`")
      ->required();
  cmd->add_option("--compare", *compare,
                  "further run directories overlaid on the same charts");
  cmd->add_option("--out,-o", options->out_path,
                  "where to write (default RUN_DIR/report.html)");
  cmd->add_option("--max-transcripts", options->trajectories.max_transcripts,
                  "episodes per run whose transcript is embedded (the others "
                  "stay filterable by their scores)")
      ->capture_default_str();
  cmd->add_option("--max-message-chars",
                  options->trajectories.max_message_chars,
                  "longer messages keep their head and tail")
      ->capture_default_str();
  cmd->callback([options, run_dir, compare] {
    const int rc = RunCommand([&] {
      options->run_dirs = {*run_dir};
      options->run_dirs.insert(options->run_dirs.end(), compare->begin(),
                               compare->end());
      const std::string path = report::WriteReport(*options);
      std::cout << "report: " << path << "\n";
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(report, AddReportCommands);

}  // namespace clinrl::cli
