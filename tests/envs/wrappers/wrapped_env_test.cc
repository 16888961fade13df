// Wrapped envs as a run uses them: the decorator's spec and info, the
// rewrite deterministic per task, the answer unchanged (the oracle's
// accuracy on dx_dialogue's test split is the same wrapped and plain), and
// config errors that name the wrapper entry.
#include <gtest/gtest.h>

#include "core/error.h"
#include "envs/env_options.h"
#include "envs/env_pool.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"
#include "envs/wrappers/env_wrapper_registry.h"

namespace clinrl::envs {
namespace {

// An inner env with fixed text: a system message and one user message.
class FixedTextEnv : public Env {
 public:
  explicit FixedTextEnv(std::string text) : text_(std::move(text)) {}
  EnvSpec Spec() const override {
    EnvSpec s;
    s.name = "fixed";
    s.version = "1";
    s.action_format = "ANSWER: <text>";
    s.splits = {{"test", 4}};
    return s;
  }
  ResetResult Reset(const ResetRequest& request) override {
    TaskIndexOf(request, 4);
    return {{{"system", "Takes Lipitor."}, {"user", text_}}, json::object()};
  }
  StepResult Step(const std::string&) override {
    StepResult r;
    r.observation = {{"user", "He takes Zocor."}};
    r.terminated = true;
    r.info = {{"metrics", {{"correct", 1}}}};
    return r;
  }
  StepResult Truncate() override { return Step(""); }

 private:
  std::string text_;
};

std::vector<EnvEntry::Wrapper> Wrappers(std::vector<std::string> names) {
  std::vector<EnvEntry::Wrapper> out;
  for (auto& n : names) out.push_back({std::move(n), json::object()});
  return out;
}

ResetRequest TestTask(int64_t index) {
  ResetRequest r;
  r.split = "test";
  r.task_index = index;
  return r;
}

TEST(WrappedEnvTest, RewritesUserTextNotSystemTextAndSaysSo) {
  auto env =
      WrapEnv(std::make_unique<FixedTextEnv>("A man on Lipitor."),
              Wrappers({"drug_name_swap", "demographic_swap"}), "wrappers");
  EXPECT_EQ(env->Spec().name, "fixed+drug_name_swap+demographic_swap");
  const ResetResult r = env->Reset(TestTask(0));
  EXPECT_EQ(r.observation[0].content, "Takes Lipitor.");
  EXPECT_EQ(r.observation[1].content, "A woman on Atorvastatin.");
  EXPECT_EQ(r.info["wrappers"], (json{"drug_name_swap", "demographic_swap"}));
  const StepResult s = env->Step("ANSWER: x");
  EXPECT_EQ(s.observation[0].content, "She takes Simvastatin.");
  EXPECT_EQ(s.info["metrics"]["correct"], 1);
}

TEST(WrappedEnvTest, DistractorIsTheSameForTheSameTask) {
  auto wrapped = [] {
    return WrapEnv(EnvRegistry::Global().Create("dx_dialogue"),
                   Wrappers({"distractor"}), "wrappers");
  };
  auto a = wrapped();
  auto b = wrapped();
  std::set<std::string> texts;
  for (int64_t i = 0; i < 12; ++i) {
    const auto first = a->Reset(TestTask(i)).observation;
    EXPECT_EQ(first, b->Reset(TestTask(i)).observation) << i;
    texts.insert(first[1].content);
  }
  EXPECT_EQ(texts.size(), 12u);
  // The task a seed draws gets that task's distractor.
  ResetRequest by_seed;
  by_seed.split = "test";
  by_seed.seed = 77;
  const ResetResult seeded = a->Reset(by_seed);
  const int64_t index = seeded.info["task"]["task_index"];
  EXPECT_EQ(seeded.observation, b->Reset(TestTask(index)).observation);
}

TEST(WrappedEnvTest, DemographicSwapRewritesTheOpeningLine) {
  auto plain = EnvRegistry::Global().Create("dx_dialogue");
  auto wrapped = WrapEnv(EnvRegistry::Global().Create("dx_dialogue"),
                         {{"demographic_swap", {{"age_band", 0}}}}, "wrappers");
  for (int64_t i = 0; i < 5; ++i) {
    const ResetResult p = plain->Reset(TestTask(i));
    const ResetResult w = wrapped->Reset(TestTask(i));
    const json& c = p.info["case"];
    const bool male = c["sex"] == "male";
    EXPECT_EQ(w.observation[1].content,
              fmt::format("{}-year-old {}. Chief complaint: {}.",
                          c["age"].get<int>(), male ? "woman" : "man",
                          c["chief_complaint"].get<std::string>()));
    EXPECT_EQ(w.info["case"], c) << "the task data stays the env's";
  }
}

// The oracle reads the task data, not the text: every wrapper, and all of
// them together, leave each episode's correctness as it was.
std::vector<int> OracleCorrect(const std::vector<std::string>& wrappers) {
  auto env = WrapEnv(EnvRegistry::Global().Create("dx_dialogue"),
                     Wrappers(wrappers), "wrappers");
  const int64_t tasks = env->Spec().splits.at("test");
  std::vector<int> correct;
  for (int64_t i = 0; i < tasks; ++i) {
    const ResetResult reset = env->Reset(TestTask(i));
    auto policy = ScriptedPolicyRegistry::Global().Create(
        "dx_dialogue", "oracle", static_cast<uint64_t>(i));
    Observation transcript = reset.observation;
    json info = reset.info;
    for (int turn = 0; turn < 20; ++turn) {
      json shown = info;
      shown.erase("reward_spec");
      shown.erase("answer");
      const StepResult s = env->Step(policy->Act(transcript, shown));
      info = s.info;
      if (s.terminated || s.truncated) break;
    }
    correct.push_back(info["metrics"]["correct"].get<int>());
  }
  return correct;
}

TEST(WrappedEnvTest, OracleAccuracyIsTheSameWrappedAndPlain) {
  const std::vector<int> plain = OracleCorrect({});
  ASSERT_EQ(plain.size(), 240u);
  for (const auto& wrappers : std::vector<std::vector<std::string>>{
           {"drug_name_swap"},
           {"distractor"},
           {"demographic_swap"},
           {"drug_name_swap", "distractor", "demographic_swap"}}) {
    EXPECT_EQ(OracleCorrect(wrappers), plain) << wrappers.back();
  }
}

EnvEntry Entry(const std::string& name, std::vector<EnvEntry::Wrapper> w) {
  EnvEntry e;
  e.name = name;
  e.wrappers = std::move(w);
  return e;
}

TEST(WrappedEnvTest, RunConfigEntriesReadTheirWrappers) {
  const json entry = json::parse(R"({"name": "dx_dialogue", "wrappers": [
      {"name": "drug_name_swap"},
      {"name": "distractor", "options": {"seed": 2}}]})");
  const EnvEntry e = ReadOptions<EnvEntry>(entry, "envs.0");
  ASSERT_EQ(e.wrappers.size(), 2u);
  EXPECT_EQ(e.wrappers[0].name, "drug_name_swap");
  EXPECT_EQ(e.wrappers[0].options, json::object());
  EXPECT_EQ(e.wrappers[1].options, (json{{"seed", 2}}));
  try {
    ReadOptions<EnvEntry>(
        json::parse(R"({"name": "echo", "wrappers": [{"nmae": "x"}]})"),
        "envs.0");
    FAIL() << "a misspelt wrapper key was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("envs.0.wrappers.0.nmae"),
              std::string::npos)
        << e.what();
  }
}

TEST(WrappedEnvTest, UnknownWrapperIsAConfigErrorNamingTheEntry) {
  const std::vector<EnvEntry> entries = {
      Entry("echo", {}), Entry("dx_dialogue", {{"distractor", json::object()},
                                               {"drug_swap", json::object()}})};
  try {
    CheckRunEnvs(entries);
    FAIL() << "an unknown wrapper was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "envs.1.wrappers.1.name: unknown env wrapper 'drug_swap'; "
              "expected one of: demographic_swap, distractor, "
              "drug_name_swap");
  }
}

TEST(WrappedEnvTest, BadWrapperOptionsNameTheirPath) {
  auto expect_error = [](const json& options, const std::string& needle) {
    try {
      WrapEnv(
          EnvRegistry::Global().Create("echo"),
          {{"drug_name_swap", json::object()}, {"demographic_swap", options}},
          "envs.0.wrappers");
      FAIL() << options.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << e.what();
    }
  };
  expect_error({{"age_bnd", 2}}, "envs.0.wrappers.1.options.age_bnd");
  expect_error({{"age_band", 11}},
               "envs.0.wrappers.1.options.age_band: expected an integer in "
               "[0, 10], got 11");
}

TEST(WrappedEnvTest, RunConnectionServesTheWrappedEnvUnderItsEntryName) {
  const std::vector<EnvEntry> entries = {
      Entry("dx_dialogue", {{"distractor", json::object()}})};
  CheckRunEnvs(entries);
  EnvConnection connection = ConnectEnvs(entries, "");
  EXPECT_EQ(connection.client->Spec("dx_dialogue").name,
            "dx_dialogue+distractor");
  ResetResult reset;
  connection.client->Reset("dx_dialogue", TestTask(0), &reset);
  EXPECT_EQ(reset.info["wrappers"], json{"distractor"});
  EXPECT_THROW(ConnectEnvs(entries, "tcp://127.0.0.1:1"), ConfigError);
}

}  // namespace
}  // namespace clinrl::envs
