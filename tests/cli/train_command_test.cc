// `clinrl train` as an operator runs it: a diverging run must exit non-zero
// with a message that names the step, the value and the option to change.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli/run_clinrl.h"

namespace {

using clinrl::testing::RunClinrl;
using nlohmann::json;

// A tiny GRPO run on the echo env; the entropy bonus gives the first step a
// gradient whatever the rewards, so lr 1e30 moves every weight to ~1e30.
std::string TinyGrpoConfig(const std::string& name) {
  const std::string out = ::testing::TempDir() + "/cli_runs";
  std::filesystem::remove_all(out + "/" + name);
  const json doc = {
      {"run", {{"name", name}, {"out_dir", out}, {"seed", 3}, {"threads", 1}}},
      {"policy",
       {{"init",
         {{"hidden_size", 32},
          {"intermediate_size", 64},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"max_position_embeddings", 2048}}},
        {"tokenizer", "byte"}}},
      {"envs",
       json::array({{{"name", "echo"}, {"options", {{"max_turns", 2}}}}})},
      {"rollout",
       {{"group_size", 4},
        {"tasks_per_step", 2},
        {"max_turns", 2},
        {"max_tokens_per_turn", 6}}},
      {"trainer",
       {{"stages", {"grpo"}},
        {"steps", 3},
        {"micro_batch", 4},
        {"checkpoint_every", 1},
        {"entropy_coef", 0.01}}},
      {"eval", {{"validation_episodes", 2}, {"test_episodes", 2}}}};
  const std::string path = ::testing::TempDir() + "/" + name + ".json";
  std::ofstream(path) << doc.dump(2);
  return path;
}

TEST(TrainCommandTest, HugeLearningRateExitsNonZeroNamingTheValue) {
  const std::string config = TinyGrpoConfig("cli_diverging");
  const auto r =
      RunClinrl("train " + config + " --set trainer.lr=1e30 --no-baselines");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("error: grpo step "), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.find("the loss is") != std::string::npos ||
              r.out.find("gradient norm (grad_norm) is") != std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("trainer.non_finite=skip"), std::string::npos) << r.out;
}

TEST(TrainCommandTest, BadNonFiniteOptionNamesTheAllowedValues) {
  const auto r = RunClinrl("config show " + TinyGrpoConfig("cli_bad_option") +
                           " --set trainer.non_finite=ignore");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("trainer.non_finite: got 'ignore', expected one of: "
                       "stop, skip"),
            std::string::npos)
      << r.out;
}

// Env options are checked by the env's own schema when the env server
// starts, before any step: a misspelt one is one line naming its config key.
TEST(TrainCommandTest, MisspeltEnvOptionIsOneLineNamingItsKey) {
  const auto r = RunClinrl("train " + TinyGrpoConfig("cli_bad_env") +
                           " --set envs.0.options.max_turn=2 --no-baselines");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("error: envs.0.options.max_turn: unknown key (did you "
                        "mean 'max_turns'?)",
                        0),
            0u)
      << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
}

}  // namespace
