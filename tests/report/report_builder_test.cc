#include "report/report_builder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "report/run_metrics.h"
#include "report/trajectory_digest.h"

namespace clinrl::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/report_" + name;
  fs::remove_all(dir);
  MakeDirectories(dir);
  return dir;
}

void WriteLines(const std::string& path, const std::vector<json>& lines) {
  std::ofstream out(path);
  for (const json& l : lines) out << l.dump() << "\n";
}

json Episode(int step, const std::string& split, double total,
             const std::string& termination, const std::string& answer) {
  return {{"episode_id", fmt::format("e{}-{}", step, split)},
          {"env", "dx_dialogue"},
          {"split", split},
          {"task_index", step},
          {"seed", 7},
          {"policy_version", step},
          {"step", step},
          {"termination", termination},
          {"step_rewards", {0.0, 0.0}},
          {"timings", {{"episode_s", 0.5}}},
          {"turns",
           {{{"role", "system"}, {"content", "You are a doctor."}},
            {{"role", "user"}, {"content", "Chest pain."}},
            {{"role", "assistant"},
             {"content", answer},
             {"token_ids", {1, 2, 3}},
             {"logprobs", {-0.1, -0.2, -0.3}}},
            {{"role", "user"}, {"content", "d-dimer: normal."}}}},
          {"reward",
           {{"total", total},
            {"components",
             {{"diagnosis",
               {{"score", total},
                {"weight", 1.0},
                {"details", {{"match", "none"}}}}},
              {"rubric",
               {{"score", 0.5},
                {"weight", 0.5},
                {"details",
                 {{"criteria",
                   {{{"criterion", "asks about onset"},
                     {"points", 5},
                     {"met", true}},
                    {{"criterion", "orders ECG"},
                     {"points", 5},
                     {"met", false}}}}}}}}}}}},
          {"reward_spec", {{"components", json::array()}, {"big", "spec"}}},
          {"info",
           {{"cost", 85.0},
            {"metrics", {{"correct", 0}}},
            {"reward_spec", {{"components", json::array()}}}}}};
}

// A small run directory shaped like `clinrl train` writes it.
std::string SmallRun(const std::string& name, double lr) {
  const std::string dir = FreshDir(name);
  WriteFileAtomic(
      dir + "/config.json",
      json{{"run", {{"name", name}}}, {"trainer", {{"lr", lr}}}}.dump());
  WriteLines(dir + "/metrics.jsonl",
             {{{"step", 1}, {"stage", "sft"}, {"loss", 2.5}, {"time_s", 1.0}},
              {{"step", 2}, {"stage", "sft"}, {"loss", 2.25}, {"time_s", 2.0}},
              {{"step", 2},
               {"eval", "validation"},
               {"accuracy", 0.25},
               {"reward/mean", 0.125},
               {"time_s", 2.5}},
              {{"step", 3},
               {"stage", "grpo"},
               {"reward/mean", 0.5},
               {"kl", nullptr},
               {"time_s", 4.0}},
              {{"step", 3}, {"eval", "test"}, {"accuracy", 0.5}}});
  WriteLines(dir + "/trajectories.jsonl",
             {Episode(3, "train", 0.75, "finished", "DIAGNOSIS: GERD"),
              Episode(3, "train", -0.25, "max_turns", "TEST: d-dimer")});
  return dir;
}

TEST(RunMetricsTest, StepRowsAndEvaluationsAreSeparated) {
  const std::string dir = SmallRun("metrics", 1e-3);
  const RunMetrics m = ReadRunMetrics(dir + "/metrics.jsonl");
  EXPECT_EQ(m.steps, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(m.stages, (std::vector<std::string>{"sft", "sft", "grpo"}));
  // Keys in order of first appearance (within a line, JSON key order).
  ASSERT_EQ(m.keys, (std::vector<std::string>{"loss", "kl", "reward/mean"}));
  EXPECT_EQ(m.values[0][1], 2.25);
  EXPECT_TRUE(std::isnan(m.values[0][2]));  // no loss in the GRPO line
  EXPECT_TRUE(std::isnan(m.values[2][0]));  // reward only from step 3
  EXPECT_EQ(m.values[2][2], 0.5);
  EXPECT_TRUE(std::isnan(m.values[1][2]));  // null in the file
  ASSERT_EQ(m.evals.size(), 2u);
  EXPECT_EQ(m.evals[0].split, "validation");
  EXPECT_EQ(m.evals[0].step, 2);
  EXPECT_EQ(m.evals[0].metrics["accuracy"], 0.25);
  EXPECT_FALSE(m.evals[0].metrics.contains("time_s"));

  const json j = RunMetricsJson(m);
  EXPECT_EQ(j["stages"], json({"sft", "grpo"}));
  EXPECT_EQ(j["stage"], json({0, 0, 1}));
  EXPECT_TRUE(j["values"][1][2].is_null());
  EXPECT_EQ(j["evals"][1]["split"], "test");
}

TEST(RunMetricsTest, AResumedRunsReplayedStepsReplaceTheFirstOnes) {
  const std::string dir = FreshDir("resumed");
  // Killed after step 3, resumed from the checkpoint of step 2.
  WriteLines(dir + "/metrics.jsonl",
             {{{"step", 1}, {"stage", "grpo"}, {"kl", 0.1}},
              {{"step", 2}, {"stage", "grpo"}, {"kl", 0.2}},
              {{"step", 2}, {"eval", "validation"}, {"accuracy", 0.5}},
              {{"step", 3}, {"stage", "grpo"}, {"kl", 0.3}, {"lr", 1.0}},
              {{"step", 3}, {"stage", "grpo"}, {"kl", 0.35}},
              {{"step", 2}, {"eval", "validation"}, {"accuracy", 0.5}},
              {{"step", 4}, {"stage", "grpo"}, {"kl", 0.4}}});
  const RunMetrics m = ReadRunMetrics(dir + "/metrics.jsonl");
  EXPECT_EQ(m.steps, (std::vector<int64_t>{1, 2, 3, 4}));
  ASSERT_EQ(m.keys, (std::vector<std::string>{"kl", "lr"}));
  EXPECT_EQ(m.values[0], (std::vector<double>{0.1, 0.2, 0.35, 0.4}));
  EXPECT_TRUE(std::isnan(m.values[1][2]));  // the replaced line's lr is gone
  EXPECT_EQ(m.evals.size(), 1u);
}

TEST(RunMetricsTest, RoundsToSignificantDigits) {
  EXPECT_EQ(RoundSignificant(0.123456789, 4), 0.1235);
  EXPECT_EQ(RoundSignificant(-98765.4321, 3), -98800.0);
  EXPECT_EQ(RoundSignificant(0.0, 4), 0.0);
  EXPECT_EQ(RoundSignificant(1.5e-9, 6), 1.5e-9);
}

TEST(RunMetricsTest, BadLinesNameTheFileLineAndField) {
  const std::string dir = FreshDir("bad_metrics");
  WriteLines(dir + "/metrics.jsonl",
             {{{"step", 1}, {"loss", 1.0}}, {{"stage", "sft"}, {"loss", 1.0}}});
  try {
    ReadRunMetrics(dir + "/metrics.jsonl");
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("metrics.jsonl:2"), std::string::npos) << what;
    EXPECT_NE(what.find("step: expected an integer"), std::string::npos)
        << what;
  }
  WriteLines(dir + "/metrics.jsonl", {{{"step", 1}, {"kl", "high"}}});
  try {
    ReadRunMetrics(dir + "/metrics.jsonl");
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("kl: expected a number or null, got \"high\""),
              std::string::npos)
        << what;
  }
}

// A crash mid-write leaves half a line; a resumed run appends after it. The
// report skips that line, counts it, and shows everything else.
TEST(RunMetricsTest, ADamagedMiddleLineIsSkippedAndCounted) {
  const std::string dir = FreshDir("damaged");
  {
    std::ofstream out(dir + "/metrics.jsonl");
    out << json({{"step", 1}, {"stage", "grpo"}, {"kl", 0.1}}).dump() << "\n"
        << "{\"step\": 2, \"stage\": \"gr"
        << "\n"
        << "[1, 2]\n"
        << json({{"step", 3}, {"stage", "grpo"}, {"kl", 0.3}}).dump() << "\n";
    std::ofstream traj(dir + "/trajectories.jsonl");
    traj << Episode(1, "train", 0.5, "finished", "x").dump() << "\n"
         << "{\"step\": 1, \"turns\": ["
         << "\n"
         << Episode(3, "train", 0.25, "finished", "y").dump() << "\n";
  }
  const RunMetrics m = ReadRunMetrics(dir + "/metrics.jsonl");
  EXPECT_EQ(m.steps, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(m.bad_lines, 2);
  EXPECT_EQ(RunMetricsJson(m)["bad_lines"], 2);
  const TrajectoryDigest d =
      ReadTrajectoryDigest(dir + "/trajectories.jsonl", {});
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.bad_lines, 1);
  EXPECT_EQ(d.line, (std::vector<int64_t>{1, 3}));
}

TEST(TrajectoryDigestTest, SelectsAllThatFitElseRecentHalfAndASpread) {
  EXPECT_EQ(SelectTranscripts(5, 10), std::vector<bool>(5, true));
  EXPECT_EQ(SelectTranscripts(5, 0), std::vector<bool>(5, false));
  const std::vector<bool> keep = SelectTranscripts(1000, 100);
  int64_t kept = 0, recent = 0, early = 0;
  for (size_t i = 0; i < keep.size(); ++i) {
    kept += keep[i];
    recent += keep[i] && i >= 950;
    early += keep[i] && i < 475;
  }
  EXPECT_EQ(kept, 100);
  EXPECT_EQ(recent, 50);  // the last 50 episodes, all of them
  // The other 50 spread evenly over the first 950: about half in each half.
  EXPECT_GE(early, 24);
  EXPECT_LE(early, 26);
  EXPECT_TRUE(keep[0]);
}

TEST(TrajectoryDigestTest, CompactTranscriptDropsTokensAndSpecs) {
  json record = Episode(4, "train", 1.0, "finished", "DIAGNOSIS: GERD");
  record["turns"][1]["content"] =
      std::string(3000, 'a') + std::string(3000, 'b');
  const json t = CompactTranscript(record, 1000);
  EXPECT_FALSE(t.contains("reward_spec"));
  EXPECT_FALSE(t["info"].contains("reward_spec"));
  EXPECT_EQ(t["info"]["cost"], 85.0);
  ASSERT_EQ(t["turns"].size(), 4u);
  EXPECT_FALSE(t["turns"][2].contains("token_ids"));
  EXPECT_FALSE(t["turns"][2].contains("logprobs"));
  EXPECT_EQ(t["turns"][2]["content"], "DIAGNOSIS: GERD");
  const std::string cut = t["turns"][1]["content"];
  EXPECT_EQ(cut.substr(0, 500), std::string(500, 'a'));
  EXPECT_EQ(cut.substr(cut.size() - 500), std::string(500, 'b'));
  EXPECT_NE(cut.find("[... 5000 chars cut ...]"), std::string::npos);
  EXPECT_EQ(t["reward"]["components"]["rubric"]["details"]["criteria"].size(),
            2u);
}

TEST(TrajectoryDigestTest, IndexesEveryEpisodeAndKeepsTheBudget) {
  const std::string dir = SmallRun("digest", 1e-3);
  TrajectoryDigestOptions o;
  o.max_transcripts = 1;
  const TrajectoryDigest d =
      ReadTrajectoryDigest(dir + "/trajectories.jsonl", o);
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.reward, (std::vector<double>{0.75, -0.25}));
  EXPECT_EQ(d.terminations,
            (std::vector<std::string>{"finished", "max_turns"}));
  EXPECT_EQ(d.termination, (std::vector<int>{0, 1}));
  EXPECT_EQ(d.policy_turns, (std::vector<int>{1, 1}));
  EXPECT_EQ(d.components.at("diagnosis"), (std::vector<double>{0.75, -0.25}));
  // Budget 1 of 2: the most recent half of the budget is 0 episodes, the
  // spread takes the first.
  EXPECT_EQ(d.transcript, (std::vector<int64_t>{0, -1}));
  ASSERT_EQ(d.transcripts.size(), 1u);
  EXPECT_EQ(json::parse(d.transcripts[0])["episode_id"], "e3-train");
}

TEST(TrajectoryDigestTest, WrongTypesNameTheLineAndField) {
  const std::string dir = FreshDir("bad_traj");
  json bad = Episode(1, "train", 0.5, "finished", "x");
  bad["reward"]["total"] = "high";
  WriteLines(dir + "/trajectories.jsonl",
             {Episode(1, "train", 0.5, "finished", "x"), bad});
  try {
    ReadTrajectoryDigest(dir + "/trajectories.jsonl", {});
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("trajectories.jsonl:2: reward.total: expected"),
              std::string::npos)
        << what;
  }
}

// The JSON inside the page, as the page's script reads it.
json EmbeddedData(const std::string& html) {
  const std::string open =
      "<script id=\"clinrl-data\" type=\"application/json\">";
  const size_t begin = html.find(open);
  EXPECT_NE(begin, std::string::npos);
  const size_t start = begin + open.size();
  const size_t end = html.find("</script>", start);
  EXPECT_NE(end, std::string::npos);
  return json::parse(html.substr(start, end - start));
}

TEST(ReportBuilderTest, ScriptTagsInTranscriptsCannotEscapeTheData) {
  const json data = {{"runs",
                      {{{"name", "x</script><script>alert(1)</script>"},
                        {"text", "<!-- a < b -->"}}}}};
  const std::string html = RenderReportHtml(data);
  EXPECT_EQ(html.find("alert(1)</script>"), std::string::npos);
  EXPECT_EQ(EmbeddedData(html), data);
  EXPECT_NE(html.find("<title>clinrl report: x&lt;/script&gt;"),
            std::string::npos);
}

TEST(ReportBuilderTest, ComparedRunsAreEmbeddedInOrder) {
  const std::string a = SmallRun("run_a", 1e-3);
  const std::string b = SmallRun("run_b", 3e-4);
  ReportOptions o;
  o.run_dirs = {a, b};
  const std::string path = WriteReport(o);
  EXPECT_EQ(path, a + "/report.html");
  const std::string html = ReadFile(path);
  // Self-contained: nothing fetched from anywhere.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find(" src="), std::string::npos);
  const json data = EmbeddedData(html);
  ASSERT_EQ(data["runs"].size(), 2u);
  EXPECT_EQ(data["runs"][0]["name"], "run_a");
  EXPECT_EQ(data["runs"][1]["config"]["trainer"]["lr"], 3e-4);
  EXPECT_EQ(data["runs"][0]["metrics"]["step"], json({1, 2, 3}));
  EXPECT_EQ(data["runs"][0]["trajectories"]["count"], 2);
  EXPECT_EQ(data["runs"][0]["trajectories"]["transcripts"].size(), 2u);
  EXPECT_TRUE(data["runs"][0]["summary"].is_null());
}

TEST(ReportBuilderTest, RunsWithTheSameNameAreToldApart) {
  const std::string a = SmallRun("same_name", 1e-3);
  ReportOptions o;
  o.run_dirs = {a, a};
  const json data = BuildReportData(o);
  EXPECT_EQ(data["runs"][0]["name"], "same_name");
  EXPECT_EQ(data["runs"][1]["name"], "same_name (2)");
}

TEST(ReportBuilderTest, MissingMetricsNamesTheRunDirectory) {
  const std::string dir = FreshDir("empty_run");
  ReportOptions o;
  o.run_dirs = {dir};
  try {
    BuildReportData(o);
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(dir), std::string::npos) << what;
    EXPECT_NE(what.find("metrics.jsonl is missing"), std::string::npos) << what;
  }
  o.run_dirs = {dir + "/nope"};
  EXPECT_THROW(BuildReportData(o), BadRequest);
  o.run_dirs = {};
  EXPECT_THROW(BuildReportData(o), BadRequest);
}

}  // namespace
}  // namespace clinrl::report
