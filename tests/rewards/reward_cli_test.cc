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

}  // namespace
}  // namespace clinrl::rewards
