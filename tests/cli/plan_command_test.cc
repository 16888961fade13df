// `clinrl plan` as a user runs it: the table and the JSON object, and one
// line naming the flag, the value and what was expected for each bad flag.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli/run_clinrl.h"

namespace {

using clinrl::testing::CommandResult;
using clinrl::testing::ExpectOneLineError;
using clinrl::testing::RunClinrl;
using nlohmann::json;

// The quickstart's own tokenizer is trained by launch/quickstart; the byte
// tokenizer gives the planner a vocabulary without it.
const std::string kQuickstart = std::string(CLINRL_SOURCE_DIR) +
                                "/configs/quickstart.json --set "
                                "policy.tokenizer=byte";
const std::string kQwen7b =
    std::string(CLINRL_SOURCE_DIR) + "/configs/qwen2.5-7b.json";

TEST(PlanCommandTest, PrintsATablePerRoleAndTheVerdict) {
  const auto r = RunClinrl("plan " + kQuickstart);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("learner (1 process"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("AdamW moments"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("verdict: fits"), std::string::npos) << r.out;
}

TEST(PlanCommandTest, JsonOnEightGpusFillsThemWithLearners) {
  const auto r = RunClinrl("plan " + kQwen7b +
                           " --nodes 1 --gpus-per-node 8 --gpu-memory-gib 80 "
                           "--sharding zero3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json plan = json::parse(r.out);
  // 8 GPUs less the config's 2 rollout workers.
  EXPECT_EQ(plan["run"]["learner_ranks"], 6);
  EXPECT_EQ(plan["run"]["sharding"], "zero3");
  EXPECT_EQ(plan["model"]["parameters"], 7615616512);
  EXPECT_EQ(plan["cluster"]["device_bytes"], int64_t{80} << 30);
  EXPECT_EQ(plan["roles"][0]["role"], "learner");
  EXPECT_TRUE(plan["fits"].get<bool>()) << plan["verdict"];
}

TEST(PlanCommandTest, NamesTheFixForARunThatDoesNotFit) {
  // The 7B learner with ZeRO-1 on 80 GB: the full-size flat buffers of the
  // gradient reduction and the parameter gather do not fit beside the
  // weights, the gradients and the reference.
  const auto r = RunClinrl("plan " + kQwen7b +
                           " --gpus-per-node 8 --gpu-memory-gib 80 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json plan = json::parse(r.out);
  EXPECT_FALSE(plan["fits"].get<bool>());
  EXPECT_NE(plan["largest"].get<std::string>().find("of the learner"),
            std::string::npos)
      << plan["largest"];
  EXPECT_EQ(plan["fix"].get<std::string>().rfind("--sharding zero3", 0), 0u)
      << plan["fix"];
}

TEST(PlanCommandTest, BadFlagValuesNameTheFlag) {
  ExpectOneLineError(RunClinrl("plan " + kQuickstart + " --nodes 0"),
                     "--nodes: got '0', expected a positive integer");
  ExpectOneLineError(RunClinrl("plan " + kQuickstart + " --gpus-per-node two"),
                     "--gpus-per-node: got 'two', expected a positive integer");
  ExpectOneLineError(
      RunClinrl("plan " + kQuickstart + " --gpu-memory-gib -80"),
      "--gpu-memory-gib: got '-80', expected a positive number of GiB");
  ExpectOneLineError(RunClinrl("plan " + kQuickstart + " --sharding zero2"),
                     "--sharding: got 'zero2', expected zero1");
}

TEST(PlanCommandTest, TooFewGpusForTheRolloutWorkers) {
  // The 7B config has 2 rollout workers: 2 GPUs leave none for a learner.
  ExpectOneLineError(
      RunClinrl("plan " + kQwen7b + " --gpus-per-node 2 --gpu-memory-gib 80"),
      "--gpus-per-node: 1 node(s) x 2 GPUs leave no GPU for a "
      "learner after distributed.rollout_ranks 2");
}

TEST(PlanCommandTest, UnknownLoraTargetIsNamed) {
  ExpectOneLineError(RunClinrl("plan " + kQuickstart +
                               " --set policy.lora.rank=8 --set "
                               "'policy.lora.target_modules=[\"qkv\"]'"),
                     "policy.lora.target_modules[0]: got 'qkv'");
}

}  // namespace
