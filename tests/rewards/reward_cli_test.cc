// The `clinrl reward` and `clinrl rubric` commands, run as a user would run
// them: the binary, its stdout, its exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "core/trajectory.h"
#include "rewards/reward_client.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

using json = nlohmann::json;

const std::string kClinrl = std::string(CLINRL_BINARY_DIR) + "/cli/clinrl";

struct CommandRun {
  int status = -1;
  std::string out;
};

// Runs `args` through the shell with stderr folded into stdout.
CommandRun Clinrl(const std::string& args) {
  CommandRun r;
  FILE* pipe = popen((kClinrl + " " + args + " 2>&1").c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe == nullptr) return r;
  char buf[4096];
  while (fgets(buf, sizeof(buf), pipe) != nullptr) r.out += buf;
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string TempDir() {
  const std::string dir = testing::MakeTempDir("clinrl-reward-cli");
  EXPECT_FALSE(dir.empty());
  return dir;
}

json LastJsonLine(const std::string& out) {
  const size_t end = out.find_last_not_of('\n');
  const size_t start = out.rfind('\n', end);
  return json::parse(
      out.substr(start == std::string::npos ? 0 : start + 1,
                 end - (start == std::string::npos ? 0 : start + 1) + 1));
}

TEST(RewardCli, RubricEvalPrintsTheSetScore) {
  const std::string dir = TempDir();
  {
    std::ofstream rubrics(dir + "/rubrics.jsonl");
    for (const char* id : {"a", "b"}) {
      rubrics << json{{"prompt_id", id},
                      {"prompt",
                       {{{"role", "user"}, {"content", "Chest pain?"}}}},
                      {"rubrics",
                       {{{"criterion", "Sends to the ER"},
                         {"points", 6},
                         {"tags", {"axis:accuracy"}},
                         {"match", {{"any", {"911"}}}}},
                        {{"criterion", "Says it is nothing"},
                         {"points", -9},
                         {"match", {{"any", {"nothing"}}}}}}}}
                     .dump()
              << "\n";
    }
    std::ofstream responses(dir + "/responses.jsonl");
    responses << json{{"prompt_id", "a"}, {"response", "Call 911."}}.dump()
              << "\n"
              << json{{"prompt_id", "b"}, {"response", "It is nothing."}}.dump()
              << "\n";
  }
  // a: 6/6 = 1; b: -9/6 = -1.5; mean -0.25 -> clipped 0.
  const CommandRun r =
      Clinrl("rubric eval --rubrics " + dir + "/rubrics.jsonl --responses " +
             dir + "/responses.jsonl --out " + dir + "/per_example.jsonl");
  ASSERT_EQ(r.status, 0) << r.out;
  const json set = LastJsonLine(r.out);
  EXPECT_DOUBLE_EQ(set["overall"].get<double>(), 0.0);
  EXPECT_EQ(set["examples"], 2);
  EXPECT_DOUBLE_EQ(set["tags"]["axis:accuracy"].get<double>(), 0.5);
  std::ifstream per(dir + "/per_example.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(per, line));
  EXPECT_DOUBLE_EQ(json::parse(line)["score"].get<double>(), 1.0);
  ASSERT_TRUE(std::getline(per, line));
  EXPECT_DOUBLE_EQ(json::parse(line)["score"].get<double>(), -1.5);

  const CommandRun bad =
      Clinrl("rubric eval --rubrics " + dir + "/rubrics.jsonl --responses " +
             dir + "/responses.jsonl --matcher oracle");
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_NE(bad.out.find("--matcher"), std::string::npos) << bad.out;
}

// Closed by default: a reward server asked to bind every interface
// without --insecure refuses to start, in one line naming the flag.
TEST(RewardCli, ServeRefusesANonLoopbackEndpointWithoutInsecure) {
  const CommandRun open =
      Clinrl("reward serve --endpoint tcp://*:0 --exit-after-s 1");
  EXPECT_EQ(open.status, 2) << open.out;
  EXPECT_EQ(open.out.find('\n'), open.out.size() - 1) << open.out;
  EXPECT_NE(open.out.find("--endpoint: got 'tcp://*:0'"), std::string::npos)
      << open.out;
  EXPECT_NE(open.out.find("--insecure"), std::string::npos) << open.out;
  const CommandRun allowed =
      Clinrl("reward serve --endpoint tcp://*:0 --insecure --exit-after-s 1");
  EXPECT_EQ(allowed.status, 0) << allowed.out;
}

TEST(RewardCli, ServeScoresUntilItsTimeIsUp) {
  const std::string endpoint = "ipc://" + TempDir() + "/reward.sock";
  FILE* pipe = popen((kClinrl + " reward serve --endpoint " + endpoint +
                      " --workers 2 --exit-after-s 3 2>/dev/null")
                         .c_str(),
                     "r");
  ASSERT_NE(pipe, nullptr);
  char buf[4096];
  ASSERT_NE(fgets(buf, sizeof(buf), pipe), nullptr);
  const json banner = json::parse(buf);
  EXPECT_EQ(banner["serving"], endpoint);
  {
    RewardClient client({endpoint, 5000});
    auto t = testing::MakeDialogue({"DIAGNOSIS: I21.4"});
    t.reward_spec =
        testing::OneComponentSpec("icd10", {{"expected", "I21.9"}}, 2.0);
    const RewardResult r = client.Score(t);
    EXPECT_DOUBLE_EQ(r.total, 1.0);
  }
  std::string rest;
  while (fgets(buf, sizeof(buf), pipe) != nullptr) rest += buf;
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const json stats = LastJsonLine(rest);
  EXPECT_EQ(stats["scored"], 1);
  EXPECT_EQ(stats["errors"], 0);
}

TEST(RewardCli, ScoreAndPluginsCommands) {
  const std::string dir = TempDir();
  auto t = testing::MakeDialogue({"DISPOSITION: home"});
  t.reward_spec = {{"components",
                    {{{"name", "s"},
                      {"plugin", "safety"},
                      {"params", {{"red_flag", true}, {"penalty", -2}}}}}}};
  {
    std::ofstream out(dir + "/t.jsonl");
    out << ToJson(t).dump() << "\n";
  }
  const CommandRun scored = Clinrl("reward score " + dir + "/t.jsonl");
  ASSERT_EQ(scored.status, 0) << scored.out;
  EXPECT_DOUBLE_EQ(LastJsonLine(scored.out)["total"].get<double>(), -2.0);

  const CommandRun listed =
      Clinrl("reward plugins --plugin " CLINRL_EXAMPLE_REWARD_PLUGIN);
  ASSERT_EQ(listed.status, 0) << listed.out;
  const json names = LastJsonLine(listed.out);
  EXPECT_NE(std::find(names.begin(), names.end(), "keyword_fraction"),
            names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "icd10"), names.end());

  const CommandRun missing =
      Clinrl("reward plugins --plugin " + dir + "/nope.so");
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.out.find(dir + "/nope.so"), std::string::npos)
      << missing.out;
}

bool Has(const std::string& out, const std::string& text) {
  return out.find(text) != std::string::npos;
}

TEST(RewardCli, CheckPassesTheExamplePlugin) {
  // With no samples: only the checks that need none (the example refuses
  // params {}, so nothing is scored, and the output says so).
  const CommandRun bare =
      Clinrl("reward check --plugin " CLINRL_EXAMPLE_REWARD_PLUGIN);
  ASSERT_EQ(bare.status, 0) << bare.out;
  EXPECT_TRUE(
      Has(bare.out, "PASS keyword_fraction rejects_non_object_params\n"))
      << bare.out;
  EXPECT_TRUE(Has(bare.out, "PASS keyword_fraction handles_empty_params\n"))
      << bare.out;
  EXPECT_TRUE(Has(bare.out, "NOTE keyword_fraction: no accepted params"))
      << bare.out;
  EXPECT_FALSE(Has(bare.out, "FAIL")) << bare.out;
  EXPECT_EQ(LastJsonLine(bare.out),
            (json{{"checked", {"keyword_fraction"}}, {"failures", 0}}));

  // With samples, every check runs.
  const CommandRun sampled =
      Clinrl("reward check --plugin " CLINRL_EXAMPLE_REWARD_PLUGIN
             " --params '{\"keywords\": [\"ecg\", \"troponin\"]}'"
             " --params '{\"keywords\": [\"aspirin\"]}'"
             " --bad-params '{\"keywords\": []}=params.keywords'");
  ASSERT_EQ(sampled.status, 0) << sampled.out;
  for (const char* check :
       {"rejects_non_object_params", "handles_empty_params",
        "accepts_valid_params", "rejects_malformed_params", "scores_are_finite",
        "scores_are_deterministic", "composite_matches_score",
        "trajectory_json_round_trip", "result_json_round_trip",
        "group_matches_single"}) {
    EXPECT_TRUE(
        Has(sampled.out, std::string("PASS keyword_fraction ") + check + "\n"))
        << check << "\n"
        << sampled.out;
  }
  EXPECT_FALSE(Has(sampled.out, "FAIL")) << sampled.out;
  EXPECT_TRUE(Has(sampled.out, "10 checks on 1 reward: 10 passed, 0 failed"))
      << sampled.out;
  EXPECT_EQ(LastJsonLine(sampled.out)["failures"], 0);
}

TEST(RewardCli, CheckNamesTheChecksANonconformingPluginFails) {
  // The plug-in throws std::runtime_error for params that are not an object,
  // accepts every object and scores NaN.
  const CommandRun r =
      Clinrl("reward check --plugin " CLINRL_NONCONFORMING_REWARD_PLUGIN
             " --bad-params '{\"threshold\": \"high\"}=params.threshold'");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_TRUE(Has(r.out,
                  "FAIL nonconforming rejects_non_object_params: params 42: "
                  "threw std::runtime_error: params: not an object instead "
                  "of BadRequest"))
      << r.out;
  EXPECT_TRUE(Has(r.out,
                  "FAIL nonconforming rejects_malformed_params: accepted "
                  "params {\"threshold\":\"high\"}"))
      << r.out;
  EXPECT_TRUE(Has(r.out,
                  "FAIL nonconforming scores_are_finite: params {}: "
                  "score nan"))
      << r.out;
  // What it does right still passes.
  EXPECT_TRUE(Has(r.out, "PASS nonconforming handles_empty_params\n")) << r.out;
  EXPECT_TRUE(Has(r.out, "PASS nonconforming scores_are_deterministic\n"))
      << r.out;
  const json summary = LastJsonLine(r.out);
  EXPECT_EQ(summary["checked"], json({"nonconforming"}));
  EXPECT_EQ(summary["failures"], 3);
}

TEST(RewardCli, CheckRefusesWhatItCannotCheck) {
  const CommandRun empty =
      Clinrl("reward check --plugin " CLINRL_EMPTY_REWARD_PLUGIN);
  EXPECT_EQ(empty.status, 2) << empty.out;
  EXPECT_TRUE(Has(empty.out, std::string(CLINRL_EMPTY_REWARD_PLUGIN) +
                                 ": the library registered no rewards"))
      << empty.out;

  const CommandRun nothing = Clinrl("reward check");
  EXPECT_EQ(nothing.status, 2) << nothing.out;
  EXPECT_TRUE(Has(nothing.out, "--plugin: required")) << nothing.out;

  const CommandRun unknown = Clinrl("reward check --name no_such_reward");
  EXPECT_EQ(unknown.status, 2) << unknown.out;
  EXPECT_TRUE(Has(unknown.out, "no_such_reward")) << unknown.out;

  const CommandRun bad_sample =
      Clinrl("reward check --name icd10 --bad-params '{\"expected\": 3}'");
  EXPECT_EQ(bad_sample.status, 2) << bad_sample.out;
  EXPECT_TRUE(Has(bad_sample.out, "--bad-params: expected JSON=FIELD"))
      << bad_sample.out;
}

}  // namespace
}  // namespace clinrl::rewards
