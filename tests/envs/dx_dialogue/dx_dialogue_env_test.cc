#include "envs/dx_dialogue/dx_dialogue_env.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "core/error.h"
#include "envs/dx_dialogue/diagnostic_posterior.h"
#include "envs/env_registry.h"
#include "envs/env_request_handler.h"

namespace clinrl::envs::dx {
namespace {

std::unique_ptr<Env> MakeEnv(const json& options = json::object()) {
  return EnvRegistry::Global().Create("dx_dialogue", options);
}

ResetRequest Task(const std::string& split, int64_t index) {
  ResetRequest r;
  r.split = split;
  r.task_index = index;
  return r;
}

TEST(DxDialogueEnvTest, SpecDeclaresSplitsAndGrammar) {
  const EnvSpec s = MakeEnv()->Spec();
  EXPECT_EQ(s.name, "dx_dialogue");
  EXPECT_GE(s.splits.at("train"), 2000);
  EXPECT_GE(s.splits.at("test"), 200);
  EXPECT_EQ(s.max_turns, 10);
  EXPECT_NE(s.action_format.find("DIAGNOSIS:"), std::string::npos);
  EXPECT_EQ(MakeEnv({{"max_turns", 12}})->Spec().max_turns, 12);
}

TEST(DxDialogueEnvTest, BadOptionsNameTheKey) {
  auto expect_error = [](const json& options, const std::string& needle) {
    try {
      MakeEnv(options);
      FAIL() << options.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << e.what();
    }
  };
  expect_error({{"persnoa", "terse"}}, "options.persnoa");
  expect_error({{"persona", "grumpy"}}, "terse, plain, talkative, anxious");
  expect_error({{"noise", {{"vague", 2.0}}}}, "options.noise.vague");
  expect_error({{"noise", {{"loud", true}}}}, "options.noise.loud");
  expect_error({{"max_turns", 1}}, "options.max_turns");
  expect_error({{"max_turns", "ten"}}, "options.max_turns");
  expect_error({{"patient", {{"kind", "robot"}}}}, "rules, llm");
  expect_error({{"patient", {{"kind", "llm"}}}}, "options.patient.endpoint");
  expect_error({{"knowledge_base", "/nonexistent/kb.json"}}, "cannot open");
}

TEST(DxDialogueEnvTest, ResetRejectsBadSplitIndexAndEpisodeOptions) {
  auto env = MakeEnv();
  EXPECT_THROW(env->Reset(Task("dev", 0)), BadRequest);
  EXPECT_THROW(env->Reset(Task("test", -1)), BadRequest);
  EXPECT_THROW(env->Reset(Task("test", 1 << 20)), BadRequest);
  ResetRequest r = Task("test", 0);
  r.options = {{"cost_budget", 5}};  // an env option, not an episode option
  EXPECT_THROW(env->Reset(r), ConfigError);
  EXPECT_THROW(env->Step("ASK: fever"), BadRequest);  // no episode yet
}

TEST(DxDialogueEnvTest, ResetShowsThePresentationAndTheRewardSpec) {
  auto env = MakeEnv();
  const ResetResult r = env->Reset(Task("test", 7));
  ASSERT_EQ(r.observation.size(), 2u);
  EXPECT_EQ(r.observation[0].role, "system");
  EXPECT_EQ(r.observation[1].role, "user");
  EXPECT_NE(r.observation[1].content.find("Chief complaint:"),
            std::string::npos);
  const json& spec = r.info["reward_spec"];
  ASSERT_EQ(spec["components"].size(), 4u);
  EXPECT_EQ(spec["components"][0]["plugin"], "icd10");
  EXPECT_EQ(spec["components"][0]["params"]["expected"],
            spec["expected_icd10"]);
  EXPECT_EQ(spec["components"][1]["plugin"], "cost");
  EXPECT_EQ(spec["components"][2]["plugin"], "safety");
  EXPECT_EQ(spec["components"][2]["params"]["red_flag"], spec["red_flag"]);
  EXPECT_EQ(spec["components"][3]["params"]["grammar"], "dx_dialogue");
  EXPECT_EQ(spec["success"], "diagnosis");
  EXPECT_FALSE(spec["must_ask"].empty());
  EXPECT_EQ(spec["total_cost"], 0.0);
  EXPECT_EQ(r.info["turn"], 0);
  // The opening line never names the diagnosis.
  EXPECT_EQ(r.observation[1].content.find(spec["condition"].get<std::string>()),
            std::string::npos);
}

TEST(DxDialogueEnvTest, MalformedActionsGetACorrectiveObservation) {
  auto env = MakeEnv({{"max_turns", 20}});
  env->Reset(Task("test", 0));
  const char* bad[] = {"hello",
                       "",
                       "ASK:",
                       "EXAM: spleenoscope",
                       "TEST: unicorn horn",
                       "DIAGNOSIS: banana",
                       "DISPOSITION: moon",
                       "DIAGNOSIS: pneumonia or asthma",
                       "\xff\xfe{}\"\\"};
  int64_t n = 0;
  for (const char* action : bad) {
    const StepResult s = env->Step(action);
    ++n;
    EXPECT_FALSE(s.terminated) << action;
    EXPECT_FALSE(s.truncated) << action;
    EXPECT_EQ(s.info["invalid_actions"], n) << action;
    EXPECT_EQ(s.info["action"]["type"], "invalid");
    ASSERT_EQ(s.observation.size(), 1u);
    EXPECT_FALSE(s.observation[0].content.empty());
    EXPECT_EQ(s.info["cost"], 0.0) << action;
  }
  // The episode still works afterwards.
  const StepResult ok = env->Step("ASK: fever");
  EXPECT_EQ(ok.info["action"]["type"], "ask");
  EXPECT_EQ(ok.info["invalid_actions"], n);
}

TEST(DxDialogueEnvTest, ExamsAndTestsAddTheirPrice) {
  auto env = MakeEnv();
  env->Reset(Task("test", 1));
  const auto& kb = KnowledgeBase::Default();
  StepResult s = env->Step("EXAM: vitals");
  EXPECT_EQ(s.info["cost"], kb->systems[kb->SystemIndex("vitals")].cost);
  EXPECT_EQ(s.info["revealed"].size(), 6u);
  EXPECT_EQ(s.observation[0].content.rfind("Vitals: T ", 0), 0u);
  s = env->Step("TEST: EKG");
  EXPECT_EQ(s.info["cost"], kb->systems[kb->SystemIndex("vitals")].cost +
                                kb->tests[kb->TestIndex("ecg")].cost);
  EXPECT_EQ(s.info["revealed"][0]["test"], "ecg");
  s = env->Step("ASK: any cough?");
  EXPECT_EQ(s.info["cost"], 60.0);  // questions are free
}

// Dense step rewards for per-turn credit: new evidence earns
// info_gain_reward x its expected information gain (the posterior's, before
// the answer), a repeat or an invalid action costs redundant_penalty, the
// diagnosis earns nothing here (the reward service scores it).
TEST(DxDialogueEnvTest, StepRewardsAreTheEvidencesInformationGain) {
  auto env = MakeEnv();
  const auto kb = KnowledgeBase::Default();
  env->Reset(Task("test", 2));
  // The most informative test, from a posterior of the presentation alone.
  DiagnosticPosterior posterior(kb);
  const ClinicalCase& truth = CaseBank::For(kb)->Get("test", 2);
  posterior.Start(truth.age, truth.male, truth.chief_complaint);
  int best = 0;
  double best_gain = -1;
  for (int t = 0; t < static_cast<int>(kb->tests.size()); ++t) {
    const double gain =
        posterior.Entropy() - posterior.ExpectedEntropyAfterTest(t);
    if (gain > best_gain) {
      best_gain = gain;
      best = t;
    }
  }
  ASSERT_GT(best_gain, 0.01);
  StepResult s = env->Step("TEST: " + kb->tests[best].name);
  EXPECT_NEAR(s.reward, 0.1 * best_gain, 1e-9);
  EXPECT_NEAR(s.info["information_gain"].get<double>(), best_gain, 1e-9);
  s = env->Step("TEST: " + kb->tests[best].name);  // nothing new
  EXPECT_DOUBLE_EQ(s.reward, -0.05);
  EXPECT_EQ(s.info["information_gain"], 0.0);
  s = env->Step("hello doctor");  // invalid
  EXPECT_DOUBLE_EQ(s.reward, -0.05);
  s = env->Step("DIAGNOSIS: Z99.89");
  EXPECT_TRUE(s.terminated);
  EXPECT_DOUBLE_EQ(s.reward, 0.0);

  // Both weights 0: no step rewards at all.
  auto plain = MakeEnv({{"info_gain_reward", 0.0}, {"redundant_penalty", 0.0}});
  plain->Reset(Task("test", 2));
  for (const char* a : {"EXAM: vitals", "EXAM: vitals", "nonsense"}) {
    EXPECT_EQ(plain->Step(a).reward, 0.0) << a;
  }
  EXPECT_THROW(MakeEnv({{"redundant_penalty", -1.0}}), ConfigError);
}

TEST(DxDialogueEnvTest, DiagnosisByNameAliasOrCodeEndsTheEpisode) {
  auto env = MakeEnv();
  const auto kb = KnowledgeBase::Default();
  for (int64_t i = 0; i < 6; ++i) {
    const ResetResult r = env->Reset(Task("test", i));
    const std::string code = r.info["reward_spec"]["expected_icd10"];
    const Condition& truth = kb->conditions[kb->ConditionByCode(code)];
    const std::string answers[] = {
        truth.name, code,
        truth.aliases.empty() ? truth.name : truth.aliases[0]};
    const std::string& answer = answers[i % 3];
    env->Step("DISPOSITION: " + truth.disposition);
    const StepResult s = env->Step("DIAGNOSIS: " + answer);
    EXPECT_TRUE(s.terminated) << answer;
    EXPECT_EQ(s.info["metrics"]["correct"], 1) << answer;
    EXPECT_EQ(s.info["metrics"]["turns"], 2);
    EXPECT_EQ(s.info["diagnosis_icd10"], truth.icd10);
    EXPECT_EQ(s.info["disposition"], truth.disposition);
    EXPECT_THROW(env->Step("ASK: fever"), BadRequest);  // episode over
  }
  env->Reset(Task("test", 0));
  const StepResult wrong = env->Step("DIAGNOSIS: Z99.89");
  EXPECT_TRUE(wrong.terminated);
  EXPECT_EQ(wrong.info["metrics"]["correct"], 0);
}

TEST(DxDialogueEnvTest, TurnBudgetTruncatesWithMetrics) {
  auto env = MakeEnv({{"max_turns", 3}});
  env->Reset(Task("validation", 2));
  EXPECT_FALSE(env->Step("ASK: fever").truncated);
  EXPECT_FALSE(env->Step("EXAM: lungs").truncated);
  const StepResult s = env->Step("ASK: cough");
  EXPECT_TRUE(s.truncated);
  EXPECT_FALSE(s.terminated);
  EXPECT_EQ(s.info["metrics"]["correct"], 0);
  EXPECT_EQ(s.info["metrics"]["cost"], 20.0);
  EXPECT_EQ(s.info["reward_spec"]["total_cost"], 20.0);
  EXPECT_NE(s.observation[0].content.find("Turn limit reached."),
            std::string::npos);
}

// A cut mid-episode ends it as the turn limit above does: the same metrics
// and reward spec, with what was spent so far.
TEST(DxDialogueEnvTest, TruncateEndsTheEpisodeLikeTheTurnBudget) {
  auto env = MakeEnv({{"max_turns", 3}});
  env->Reset(Task("validation", 2));
  env->Step("ASK: fever");
  const StepResult exam = env->Step("EXAM: lungs");
  const StepResult s = env->Truncate();
  EXPECT_TRUE(s.truncated);
  EXPECT_FALSE(s.terminated);
  EXPECT_TRUE(s.observation.empty());
  EXPECT_EQ(s.info["metrics"]["correct"], 0);
  EXPECT_EQ(s.info["metrics"]["cost"], 20.0);
  EXPECT_EQ(s.info["metrics"]["turns"], 2);
  EXPECT_EQ(s.info["reward_spec"]["total_cost"], 20.0);
  EXPECT_EQ(s.info["invalid_actions"], exam.info["invalid_actions"]);
  EXPECT_FALSE(s.info.contains("diagnosis_icd10"));
  EXPECT_THROW(env->Step("ASK: cough"), BadRequest);
  EXPECT_THROW(env->Truncate(), BadRequest);
}

TEST(DxDialogueEnvTest, SameSeedGivesTheSameEpisode) {
  auto play = [](int64_t seed) {
    auto env = MakeEnv({{"persona", "talkative"},
                        {"noise", {{"vague", 0.3}, {"irrelevant", 0.5}}}});
    ResetRequest r;
    r.split = "train";
    r.seed = seed;
    json out = json::array();
    const ResetResult reset = env->Reset(r);
    out.push_back(ToJson(reset.observation));
    out.push_back(reset.info);
    for (const char* a : {"ASK: fever", "ASK: cough and headache",
                          "EXAM: vitals", "TEST: cbc", "DIAGNOSIS: flu"}) {
      const StepResult s = env->Step(a);
      out.push_back(ToJson(s.observation));
      out.push_back(s.info);
    }
    return out;
  };
  EXPECT_EQ(play(42), play(42));
  EXPECT_NE(play(42), play(43));
}

TEST(DxDialogueEnvTest, ObservationsAndInfoRoundTripThroughJson) {
  auto env = MakeEnv();
  const ResetResult r = env->Reset(Task("test", 3));
  const json wire = ToJson(r.observation);
  EXPECT_EQ(ObservationFromJson(json::parse(wire.dump()), "observation"),
            r.observation);
  const StepResult s = env->Step("EXAM: abdomen");
  EXPECT_EQ(json::parse(s.info.dump()), s.info);
  EXPECT_EQ(EnvSpecFromJson(ToJson(env->Spec())).splits, env->Spec().splits);
}

TEST(DxDialogueEnvTest, PerEpisodeOptionsChangeThePatient) {
  auto env = MakeEnv();
  ResetRequest r = Task("test", 4);
  r.options = {{"persona", "terse"}, {"max_turns", 4}};
  const ResetResult reset = env->Reset(r);
  EXPECT_EQ(reset.info["max_turns"], 4);
  const std::string cc = reset.info["case"]["chief_complaint"];
  EXPECT_EQ(env->Step("ASK: " + cc).observation[0].content, "Yes.");
  // The next episode without options is back to the env's defaults.
  const ResetResult again = env->Reset(Task("test", 4));
  EXPECT_EQ(again.info["max_turns"], 10);
  EXPECT_EQ(env->Step("ASK: " + cc).observation[0].content, "Yes, " + cc + ".");
}

// The message's first part: path, what is wrong, the suggestion.
std::string ConfigErrorOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    return what.substr(0, what.find("; known keys"));
  }
  return "(no ConfigError)";
}

TEST(DxDialogueEnvTest, MisspeltOptionsNameTheKeyAndSuggestOne) {
  EXPECT_EQ(ConfigErrorOf([] {
              EnvRegistry::Global().Create("dx_dialogue", {{"max_turn", 12}},
                                           "envs.0.options");
            }),
            "envs.0.options.max_turn: unknown key (did you mean 'max_turns'?)");
  EXPECT_EQ(ConfigErrorOf([] {
              MakeEnv({{"noise", {{"vauge", 0.2}}}});
            }),
            "options.noise.vauge: unknown key (did you mean 'vague'?)");
  EXPECT_EQ(ConfigErrorOf([] {
              MakeEnv({{"patient",
                        {{"kind", "llm"},
                         {"endpoint", "http://127.0.0.1:1"},
                         {"modle", "x"}}}});
            }),
            "options.patient.modle: unknown key (did you mean 'model'?)");
  EXPECT_EQ(ConfigErrorOf([] {
              MakeEnv({{"patient", {{"temperature", 0}}}});
            }),
            "options.patient.temperature: unknown key");
}

TEST(DxDialogueEnvTest, MisspeltResetOptionNamesTheKey) {
  auto env = MakeEnv();
  ResetRequest r = Task("test", 0);
  r.options = {{"persnoa", "terse"}};
  EXPECT_EQ(ConfigErrorOf([&] { env->Reset(r); }),
            "options.persnoa: unknown key (did you mean 'persona'?)");
  // An env option is not an episode option.
  r.options = {{"cost_budget", 5}};
  EXPECT_EQ(ConfigErrorOf([&] { env->Reset(r); }),
            "options.cost_budget: unknown key");
  r.options = {{"max_turns", 65}};
  EXPECT_EQ(ConfigErrorOf([&] { env->Reset(r); }),
            "options.max_turns: expected an integer in [2, 64], got 65");
}

TEST(DxDialogueEnvTest, ServerNamesMisspeltOptionsAtStartAndReset) {
  EnvServiceOptions service;
  service.envs = {"dx_dialogue"};
  service.env_options["dx_dialogue"] = {{"persnoa", "terse"}};
  EXPECT_EQ(ConfigErrorOf([&] { EnvRequestHandler h(service); }),
            "envs.0.options.persnoa: unknown key (did you mean 'persona'?)");
  service.env_options["dx_dialogue"] = {{"persona", "terse"}};
  EnvRequestHandler h(service);
  const json reply = h.HandleJson(
      {{"op", "reset"}, {"task_index", 0}, {"options", {{"max_turn", 4}}}});
  ASSERT_FALSE(reply["ok"].get<bool>()) << reply.dump();
  EXPECT_EQ(reply["error"]["code"], "bad_request");
  EXPECT_EQ(reply["error"]["message"].get<std::string>().rfind(
                "options.max_turn: unknown key (did you mean 'max_turns'?)", 0),
            0u)
      << reply.dump();
  EXPECT_EQ(h.sessions(), 0);
}

TEST(DxDialogueEnvTest, CustomKnowledgeBaseIsLoadedOncePerPath) {
  std::ifstream in(std::string(CLINRL_SOURCE_DIR) +
                   "/envs/dx_dialogue/data/knowledge_base.json");
  json kb = json::parse(in);
  kb["tests"][0]["cost"] = 77;  // ecg
  const std::string path = ::testing::TempDir() + "dx_custom_kb.json";
  std::ofstream(path) << kb.dump();
  auto a = MakeEnv({{"knowledge_base", path}});
  auto b = MakeEnv({{"knowledge_base", path}});
  const auto& kb_a = dynamic_cast<DxDialogueEnv&>(*a).kb();
  EXPECT_EQ(&kb_a, &dynamic_cast<DxDialogueEnv&>(*b).kb());
  EXPECT_NE(&kb_a, KnowledgeBase::Default().get());
  a->Reset(Task("test", 0));
  EXPECT_EQ(a->Step("TEST: ecg").info["cost"], 77.0);
}

}  // namespace
}  // namespace clinrl::envs::dx
