// What a resumed run may change in its config: operational keys freely,
// training keys only when named, every change recorded.
#include "trainer/resume_config.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/config_schema.h"
#include "core/error.h"
#include "core/jsonl.h"

namespace clinrl::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

ClinrlConfig Config(const json& overrides) {
  return config::ReadConfig<ClinrlConfig>(overrides, {});
}

std::string RunRoot(const std::string& name, const ClinrlConfig& started) {
  const std::string root = ::testing::TempDir() + "/resume_config/" + name;
  fs::remove_all(root);
  fs::create_directories(root);
  WriteFileAtomic(root + "/config.json",
                  config::WriteConfig(started).dump(2) + "\n");
  return root;
}

TEST(ResumeConfigTest, DiffNamesEachChangedLeafWithItsValues) {
  const json before = {{"run", {{"seed", 1}}},
                       {"envs", json::array({{{"name", "echo"}}})},
                       {"trainer", {{"stages", {"sft", "grpo"}}}}};
  const json after = {
      {"run", {{"seed", 2}}},
      {"envs", json::array({{{"name", "echo"}, {"endpoint", "tcp://h:1"}}})},
      {"trainer", {{"stages", {"grpo"}}}}};
  const std::vector<ConfigChange> changes = DiffConfigs(before, after);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].key, "envs.0.endpoint");
  EXPECT_EQ(changes[0].from, "(absent)");
  EXPECT_EQ(changes[1].key, "run.seed");
  EXPECT_EQ(changes[1].from, "1");
  EXPECT_EQ(changes[1].to, "2");
  EXPECT_EQ(changes[2].key, "trainer.stages");
  EXPECT_TRUE(DiffConfigs(before, before).empty());
}

TEST(ResumeConfigTest, OnlyOperationalKeysChangeFreely) {
  for (const char* key :
       {"run.threads", "eval.test_episodes", "distributed.learner_ranks",
        "envs.0.endpoint", "trainer.checkpoint_every", "rewards.endpoint"}) {
    EXPECT_TRUE(IsOperationalKey(key)) << key;
  }
  for (const char* key :
       {"run.seed", "trainer.lr", "trainer.sft.steps",
        "policy.init.hidden_size", "envs.0.options.noise", "envs.0.name",
        "rollout.temperature", "trainer.checkpoint_everyday"}) {
    EXPECT_FALSE(IsOperationalKey(key)) << key;
  }
}

TEST(ResumeConfigTest, AChangedSeedIsRefusedNamingTheKeyAndBothValues) {
  const std::string root = RunRoot("seed", Config({{"run", {{"seed", 3}}}}));
  const ClinrlConfig resumed = Config({{"run", {{"seed", 4}}}});
  try {
    CheckResumedConfig(root, resumed, {});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("run.seed (3 -> 4)"), std::string::npos) << what;
    EXPECT_NE(what.find("--allow-config-change"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(root + "/config_changes.jsonl"));
  // Named, it is accepted and recorded; so is an operational change.
  const ClinrlConfig named = Config({{"run", {{"seed", 4}, {"threads", 2}}}});
  CheckResumedConfig(root, named, {"run.seed"});
  std::vector<json> lines;
  ReadJsonl(root + "/config_changes.jsonl",
            [&](const json& j, int64_t) { lines.push_back(j); });
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_EQ(lines[0]["changes"].size(), 2u) << lines[0];
  EXPECT_EQ(lines[0]["changes"][0]["key"], "run.seed");
  EXPECT_EQ(lines[0]["changes"][1]["key"], "run.threads");
}

TEST(ResumeConfigTest, APrefixAllowsTheKeysBelowIt) {
  const std::string root =
      RunRoot("prefix", Config({{"trainer", {{"lr", 1e-3}}}}));
  const ClinrlConfig resumed =
      Config({{"trainer", {{"lr", 2e-3}, {"sft", {{"steps", 9}}}}}});
  EXPECT_THROW(CheckResumedConfig(root, resumed, {"trainer.sft"}), ConfigError);
  EXPECT_NO_THROW(CheckResumedConfig(root, resumed, {"trainer"}));
}

}  // namespace
}  // namespace clinrl::trainer
