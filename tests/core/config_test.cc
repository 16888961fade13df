#include "core/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/clinrl_config.h"
#include "core/error.h"

namespace clinrl::config {
namespace {

using nlohmann::json;

std::string ErrorOf(const json& doc, const Overrides& overrides = {}) {
  try {
    ReadConfig<ClinrlConfig>(doc, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigTest, EmptyDocumentGivesDefaults) {
  const auto c = ReadConfig<ClinrlConfig>(json::object(), {});
  EXPECT_EQ(c.run.name, "run");
  EXPECT_DOUBLE_EQ(c.trainer.lr, 1e-5);
  EXPECT_EQ(c.trainer.loss_agg, "token_mean");
  EXPECT_TRUE(c.envs.empty());
}

TEST(ConfigTest, MergeOrderIsDefaultsThenFileThenSet) {
  const json file = {{"trainer", {{"lr", 1e-4}, {"steps", 7}}},
                     {"run", {{"name", "from_file"}}}};
  const auto from_file = ReadConfig<ClinrlConfig>(file, {});
  EXPECT_DOUBLE_EQ(from_file.trainer.lr, 1e-4);
  EXPECT_EQ(from_file.trainer.steps, 7);
  EXPECT_EQ(from_file.trainer.micro_batch, 8);  // default kept

  const auto with_set = ReadConfig<ClinrlConfig>(
      file, {{"trainer.lr", "3e-6"}, {"trainer.micro_batch", "2"}});
  EXPECT_DOUBLE_EQ(with_set.trainer.lr, 3e-6);  // --set beats the file
  EXPECT_EQ(with_set.trainer.steps, 7);         // file beats the default
  EXPECT_EQ(with_set.trainer.micro_batch, 2);   // --set beats the default
  EXPECT_EQ(with_set.run.name, "from_file");
}

TEST(ConfigTest, SetOnStringFieldKeepsTextVerbatim) {
  const auto c = ReadConfig<ClinrlConfig>(json::object(), {{"run.name", "42"}});
  EXPECT_EQ(c.run.name, "42");
}

TEST(ConfigTest, SetReachesIntoArraysAndFreeFormOptions) {
  const json file = {
      {"envs", json::array({{{"name", "dx_dialogue"},
                             {"options", {{"persona", "terse"}}}}})}};
  const auto c =
      ReadConfig<ClinrlConfig>(file, {{"envs.0.options.persona", "anxious"},
                                      {"envs.0.options.noise.vague", "0.25"}});
  ASSERT_EQ(c.envs.size(), 1u);
  EXPECT_EQ(c.envs[0].options["persona"], "anxious");
  EXPECT_DOUBLE_EQ(c.envs[0].options["noise"]["vague"].get<double>(), 0.25);
}

TEST(ConfigTest, SetReplacesWholeArray) {
  const auto c = ReadConfig<ClinrlConfig>(
      json::object(), {{"trainer.stages", R"(["sft","grpo"])"}});
  EXPECT_EQ(c.trainer.stages, (std::vector<std::string>{"sft", "grpo"}));
}

TEST(ConfigTest, UnknownKeyNamesFullPathAndSuggestion) {
  const std::string e = ErrorOf({{"trainer", {{"lrr", 1e-4}}}});
  EXPECT_NE(e.find("trainer.lrr: unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'lr'"), std::string::npos) << e;
}

TEST(ConfigTest, OverlongIsTheLengthRewardNotATrainerKey) {
  // DAPO's soft overlong punishment is the `length` reward component;
  // trainer.overlong was read by nothing and is gone.
  const std::string e = ErrorOf({{"trainer", {{"overlong", json::object()}}}});
  EXPECT_NE(e.find("trainer.overlong: unknown key"), std::string::npos) << e;
}

TEST(ConfigTest, UnknownTopLevelSection) {
  const std::string e = ErrorOf({{"trainr", json::object()}});
  EXPECT_NE(e.find("trainr: unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("'trainer'"), std::string::npos) << e;
}

TEST(ConfigTest, UnknownKeyInsideArrayElement) {
  const std::string e =
      ErrorOf({{"envs", json::array({{{"name", "x"}, {"optoins", 1}}})}});
  EXPECT_NE(e.find("envs.0.optoins: unknown key"), std::string::npos) << e;
}

TEST(ConfigTest, UnknownSetKey) {
  const std::string e = ErrorOf(json::object(), {{"trainer.lrr", "1"}});
  EXPECT_NE(e.find("--set trainer.lrr"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'trainer.lr'"), std::string::npos) << e;
  const std::string deep = ErrorOf(json::object(), {{"trainer.lr.x", "1"}});
  EXPECT_NE(deep.find("trainer.lr.x"), std::string::npos) << deep;
}

TEST(ConfigTest, WrongTypeNamesPathExpectedAndGot) {
  const std::string e = ErrorOf({{"trainer", {{"lr", "fast"}}}});
  EXPECT_NE(e.find("trainer.lr: expected number, got string \"fast\""),
            std::string::npos)
      << e;
  const std::string i = ErrorOf({{"trainer", {{"steps", 2.5}}}});
  EXPECT_NE(i.find("trainer.steps: expected integer"), std::string::npos) << i;
  const std::string b = ErrorOf({{"trainer", {{"dynamic_sampling", 1}}}});
  EXPECT_NE(b.find("trainer.dynamic_sampling: expected boolean"),
            std::string::npos)
      << b;
  const std::string s = ErrorOf({{"run", 3}});
  EXPECT_NE(s.find("run: expected object"), std::string::npos) << s;
  const std::string a = ErrorOf({{"trainer", {{"stages", "grpo"}}}});
  EXPECT_NE(a.find("trainer.stages: expected array of string"),
            std::string::npos)
      << a;
  const std::string elem = ErrorOf({{"trainer", {{"stages", {"sft", 3}}}}});
  EXPECT_NE(elem.find("trainer.stages.1: expected string"), std::string::npos)
      << elem;
}

TEST(ConfigTest, WrongTypeInSet) {
  const std::string e = ErrorOf(json::object(), {{"trainer.lr", "fast"}});
  EXPECT_NE(e.find("--set trainer.lr: expected number, got 'fast'"),
            std::string::npos)
      << e;
}

TEST(ConfigTest, BadEnumListsAllowedValues) {
  const std::string e = ErrorOf({{"trainer", {{"loss_agg", "mean"}}}});
  EXPECT_NE(e.find("trainer.loss_agg: got 'mean', expected one of: token_mean, "
                   "seq_mean_token_mean, seq_mean_token_sum_norm"),
            std::string::npos)
      << e;
  const std::string s =
      ErrorOf(json::object(), {{"trainer.kl_estimator", "k4"}});
  EXPECT_NE(
      s.find("trainer.kl_estimator: got 'k4', expected one of: k1, k2, k3"),
      std::string::npos)
      << s;
}

TEST(ConfigTest, LowerBoundsAreChecked) {
  const std::string e = ErrorOf({{"rollout", {{"group_size", 0}}}});
  EXPECT_NE(e.find("rollout.group_size: got 0, expected a value >= 1"),
            std::string::npos)
      << e;
}

TEST(ConfigTest, MalformedSetArgument) {
  EXPECT_THROW(ParseOverrides({"trainer.lr"}), ConfigError);
  EXPECT_THROW(ParseOverrides({"=3"}), ConfigError);
  EXPECT_THROW(ParseOverrides({"trainer..lr=3"}), ConfigError);
  const auto o = ParseOverrides({"a.b=c=d"});
  EXPECT_EQ(o.at("a.b"), "c=d");
}

TEST(ConfigTest, FileErrorsNameTheFile) {
  const std::string path = ::testing::TempDir() + "/bad_config.json";
  std::ofstream(path) << "{\"trainer\": {\"lr\": }";
  try {
    ResolveConfig<ClinrlConfig>(path, {});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos);
  }
  EXPECT_THROW(ResolveConfig<ClinrlConfig>(path + ".missing", {}), ConfigError);
}

TEST(ConfigTest, WriteThenReadIsIdentity) {
  auto c = ReadConfig<ClinrlConfig>(
      {{"trainer", {{"lr", 2e-5}, {"sft", {{"steps", 7}}}}},
       {"envs", json::array({{{"name", "echo"}, {"options", {{"k", 1}}}}})}},
      {});
  const json written = WriteConfig(c);
  const auto back = ReadConfig<ClinrlConfig>(written, {});
  EXPECT_EQ(WriteConfig(back), written);
  EXPECT_EQ(back.trainer.sft.steps, 7);
}

TEST(ConfigTest, QuickstartConfigResolves) {
  const auto c = ResolveConfig<ClinrlConfig>(
      std::string(CLINRL_SOURCE_DIR) + "/configs/quickstart.json",
      {"trainer.lr=3e-6"});
  EXPECT_DOUBLE_EQ(c.trainer.lr, 3e-6);
}

// The GPU starting point resolves with the settings docs/training.md names.
TEST(ConfigTest, HalfBillionGpuConfigResolves) {
  const auto c = ResolveConfig<ClinrlConfig>(
      std::string(CLINRL_SOURCE_DIR) + "/configs/qwen2.5-0.5b.json", {});
  EXPECT_EQ(c.policy.device, "cuda");
  EXPECT_EQ(c.trainer.precision, "bf16");
  EXPECT_TRUE(c.trainer.packing);
  EXPECT_TRUE(c.trainer.activation_checkpointing);
  EXPECT_TRUE(c.policy.model_dir.empty());  // random init unless given
}

}  // namespace
}  // namespace clinrl::config
