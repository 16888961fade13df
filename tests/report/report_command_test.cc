// `clinrl report` as a user runs it: exit codes, messages, where it writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "tests/cli/run_clinrl.h"

namespace clinrl {
namespace {

namespace fs = std::filesystem;
using testing::RunClinrl;

std::string TinyRun(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/report_cli_" + name;
  fs::remove_all(dir);
  MakeDirectories(dir);
  std::ofstream(dir + "/metrics.jsonl")
      << R"({"step":1,"stage":"grpo","reward/mean":0.5,"kl":0.01})"
      << "\n"
      << R"({"step":1,"eval":"test","accuracy":0.25})"
      << "\n";
  std::ofstream(dir + "/config.json")
      << nlohmann::json{{"run", {{"name", name}}}}.dump();
  return dir;
}

TEST(ReportCommandTest, WritesReportHtmlIntoTheRunDirectory) {
  const std::string a = TinyRun("a");
  const auto r = RunClinrl("report " + a);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("report: " + a + "/report.html"), std::string::npos)
      << r.out;
  const std::string html = ReadFile(a + "/report.html");
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(html.find("\"reward/mean\""), std::string::npos);
}

TEST(ReportCommandTest, ComparesRunsIntoAChosenFile) {
  const std::string a = TinyRun("cmp_a");
  const std::string b = TinyRun("cmp_b");
  const std::string out = ::testing::TempDir() + "/report_cli_compare.html";
  fs::remove(out);
  const auto r = RunClinrl("report " + a + " --compare " + b + " -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string html = ReadFile(out);
  EXPECT_NE(html.find("clinrl report: cmp_a (+1 compared)"), std::string::npos);
  EXPECT_FALSE(fs::exists(a + "/report.html"));
}

TEST(ReportCommandTest, BadInputExitsTwoNamingWhatIsWrong) {
  const std::string missing = ::testing::TempDir() + "/report_cli_nothing";
  fs::remove_all(missing);
  auto r = RunClinrl("report " + missing);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find(missing), std::string::npos) << r.out;

  const std::string empty = ::testing::TempDir() + "/report_cli_empty";
  MakeDirectories(empty);
  r = RunClinrl("report " + empty);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("metrics.jsonl is missing"), std::string::npos) << r.out;

  r = RunClinrl("report " + TinyRun("neg") + " --max-transcripts -1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("max_transcripts: got -1"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace clinrl
