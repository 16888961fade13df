// The env end to end: the oracle scores 100%, FINISH([]) scores exactly the
// share of "do nothing" tasks, over the embedded server and over HTTP.
#include "envs/ehr_fhir/ehr_fhir_env.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "envs/ehr_fhir/agent_tool_call.h"
#include "envs/ehr_fhir/fhir_http_server.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::ehr {
namespace {

struct Score {
  int64_t correct = 0, episodes = 0, do_nothing = 0;
  // Of the failures: how many expected [-1] (no value within the window).
  int64_t failed_expecting_none = 0;
};

// Plays every task of `split` with a scripted policy, the way `clinrl env
// eval` does: accuracy is the mean of the final info.metrics.correct. With
// action_mode "tools" every reply is a tool message and every action but
// the random policy's is a tool call.
Score Evaluate(const json& options, const std::string& policy,
               const std::string& split,
               const json& policy_options = json::object()) {
  auto env = EnvRegistry::Global().Create("ehr_fhir", options);
  const EnvSpec spec = env->Spec();
  const bool tools = options.value("action_mode", "text") == "tools";
  Score s;
  for (int64_t i = 0; i < spec.splits.at(split); ++i) {
    ResetRequest req;
    req.split = split;
    req.task_index = i;
    ResetResult reset = env->Reset(req);
    const json& key = reset.info["reward_spec"]["components"][0]["params"];
    if (key["required_writes"].empty() &&
        key["answer"]["accept_empty"].get<bool>()) {
      ++s.do_nothing;
    }
    // Episode i plays with seed i, as `clinrl env eval` does.
    auto p = ScriptedPolicyRegistry::Global().Create(
        "ehr_fhir", policy, static_cast<uint64_t>(i), policy_options);
    Observation transcript = reset.observation;
    json info = reset.info;
    for (int64_t turn = 0; turn < spec.max_turns; ++turn) {
      const std::string action = p->Act(transcript, info);
      if (tools && policy != "random") {
        EXPECT_EQ(action.rfind("<tool_call>\n{\"name\": ", 0), 0u) << action;
      }
      transcript.push_back({"assistant", action});
      StepResult step = env->Step(action);
      for (auto& m : step.observation) {
        EXPECT_EQ(m.role, tools ? "tool" : "user");
        transcript.push_back(m);
      }
      info = step.info;
      if (step.terminated || step.truncated) {
        EXPECT_TRUE(info.contains("metrics")) << info.dump();
        s.correct += info["metrics"]["correct"].get<int64_t>();
        EXPECT_EQ(info["metrics"]["cost"], 0);
        EXPECT_EQ(step.reward, info["metrics"]["correct"].get<double>());
        if (info["metrics"]["correct"] != 1 &&
            key["answer"]["expected"] == json::array({-1.0})) {
          ++s.failed_expecting_none;
        }
        if (policy == "oracle" && info["metrics"]["correct"] != 1) {
          ADD_FAILURE() << "oracle failed task " << i << ": "
                        << info["grade"].dump();
        }
        break;
      }
    }
    ++s.episodes;
  }
  return s;
}

TEST(EhrFhirEnvTest, OracleScoresAllAndFinishEmptyOnlyDoNothing) {
  for (const char* mode : {kStrictR4, kMedAgentBench}) {
    SCOPED_TRACE(mode);
    const json options = {{"grading", mode}};
    const Score oracle = Evaluate(options, "oracle", "test");
    EXPECT_GE(oracle.episodes, 80);
    EXPECT_EQ(oracle.correct, oracle.episodes);
    const Score empty = Evaluate(options, "finish_empty", "test");
    EXPECT_GT(empty.do_nothing, 0);
    EXPECT_LT(empty.do_nothing, empty.episodes);
    EXPECT_EQ(empty.correct, empty.do_nothing);
  }
}

TEST(EhrFhirEnvTest, OracleOverHttpAndDryRun) {
  auto record = SharedEhrRecord({"", 100, 0});
  FhirStore store;
  store.BulkLoad(record->resources());
  FhirHttpServer server(&store, {"127.0.0.1", 0, 4});
  server.Start();
  const Score http =
      Evaluate({{"base_url", server.base_url()}}, "oracle", "test");
  EXPECT_EQ(http.correct, http.episodes);
  // Sandboxed by the session header: the shared record got no writes.
  EXPECT_EQ(store.SessionRowCount(""),
            static_cast<int64_t>(record->resources().size()));
  server.Stop();
  // Dry run: nothing is sent (the port below is closed), writes still graded.
  const Score dry =
      Evaluate({{"base_url", "http://127.0.0.1:9/fhir/"}, {"dry_run", true}},
               "oracle", "test");
  EXPECT_EQ(dry.correct, dry.episodes);
}

TEST(EhrFhirEnvTest, AnswerKeysAgreeWithFhirSearch) {
  // The latest magnesium within 24 h of each task, found through the
  // server's own search (date prefix + _sort=-date), equals the answer key.
  auto env = EhrFhirEnv::Create(json::object());
  auto record = SharedEhrRecord({"", 100, 0});
  const auto& service = record->Service();
  int checked = 0;
  for (const auto& task : record->Tasks("test", kStrictR4)) {
    if (task.family != "latest_lab_24h") continue;
    const FhirResponse r = service.Handle(
        {"GET", "Observation",
         ParseQueryString(
             "patient=" + task.patient +
             "&code=19123-9&date=ge2023-11-12T10:15:00Z&_sort=-date&_count=1"),
         "", ""});
    const json b = json::parse(r.body);
    const double want = task.answer_key["answer"]["expected"][0];
    if (b["total"] == 0) {
      EXPECT_EQ(want, -1);
    } else {
      EXPECT_EQ(
          want,
          b["entry"][0]["resource"]["valueQuantity"]["value"].get<double>());
    }
    ++checked;
  }
  EXPECT_GT(checked, 3);
}

TEST(EhrFhirEnvTest, ProtocolDetails) {
  auto env = EnvRegistry::Global().Create("ehr_fhir", {{"max_turns", 4}});
  ResetRequest req;
  req.split = "test";
  req.task_index = 0;
  ResetResult reset = env->Reset(req);
  ASSERT_EQ(reset.observation.size(), 1u);
  EXPECT_NE(reset.observation[0].content.find("FINISH("), std::string::npos);
  EXPECT_EQ(reset.info["reward_spec"]["components"][0]["plugin"], "ehr_task");
  const std::string patient =
      reset.info["reward_spec"]["components"][0]["params"]["patient"];

  StepResult get =
      env->Step("GET http://localhost:8080/fhir/Patient?identifier=" + patient);
  EXPECT_FALSE(get.terminated || get.truncated);
  EXPECT_NE(get.observation[0].content.find("\"total\":1"), std::string::npos)
      << get.observation[0].content;
  StepResult spaced = env->Step(
      "```\nGET http://localhost:8080/fhir/Patient?identifier=" + patient +
      "&_count=5\n```");
  EXPECT_NE(spaced.observation[0].content.find("\"total\":1"),
            std::string::npos)
      << spaced.observation[0].content;
  StepResult bad = env->Step("please tell me the answer");
  EXPECT_EQ(bad.info["invalid_actions"], 1);
  EXPECT_NE(bad.observation[0].content.find("Invalid action"),
            std::string::npos);
  StepResult last = env->Step("GET http://evil.example/fhir/Patient");
  EXPECT_TRUE(last.truncated);
  EXPECT_EQ(last.info["metrics"]["correct"], 0);
  EXPECT_EQ(last.info["metrics"]["invalid_actions"], 2);
  EXPECT_THROW(env->Step("FINISH([])"), BadRequest);

  // A POST error is shown to the agent and is not a write.
  env->Reset(req);
  StepResult post = env->Step(
      "POST http://localhost:8080/fhir/Observation\n{\"resourceType\": "
      "\"Observation\"}");
  EXPECT_NE(post.observation[0].content.find("422"), std::string::npos);
  StepResult fin = env->Step("FINISH([])");
  EXPECT_TRUE(fin.terminated);
  EXPECT_EQ(fin.info["metrics"]["writes"], 0);

  // A body whose fields have the wrong JSON types (the model wrote it) is
  // refused by the server and graded as no match, never a thrown type_error.
  env->Reset(req);
  StepResult typed = env->Step(
      "POST http://localhost:8080/fhir/ServiceRequest\n{\"resourceType\": 7, "
      "\"code\": {\"text\": 3, \"coding\": [{\"system\": 1, \"code\": "
      "2}]}}");
  EXPECT_FALSE(typed.terminated || typed.truncated);
  StepResult typed_fin = env->Step("FINISH([])");
  EXPECT_TRUE(typed_fin.terminated);
  EXPECT_EQ(typed_fin.info["metrics"]["correct"], 0);

  req.task_index = 100000;
  EXPECT_THROW(env->Reset(req), BadRequest);
  req.split = "validation";
  EXPECT_THROW(env->Reset(req), BadRequest);
  EXPECT_THROW(EnvRegistry::Global().Create("ehr_fhir", {{"colour", 1}}),
               ConfigError);
  EXPECT_THROW(EnvRegistry::Global().Create("ehr_fhir", {{"grading", "loose"}}),
               ConfigError);
  EXPECT_THROW(EnvRegistry::Global().Create("ehr_fhir", {{"dry_run", true}}),
               ConfigError);
}

TEST(EhrFhirEnvTest, FamiliesAndTasksPerFamilySelectTheSplits) {
  auto env = EnvRegistry::Global().Create(
      "ehr_fhir", {{"patients", 300},
                   {"families", {"latest_lab_24h", "most_recent_value"}},
                   {"test_tasks_per_family", 40},
                   {"train_tasks_per_family", 50}});
  const EnvSpec spec = env->Spec();
  EXPECT_EQ(spec.splits.at("test"), 80);
  EXPECT_EQ(spec.splits.at("train"), 100);
  auto smaller = EnvRegistry::Global().Create(
      "ehr_fhir", {{"patients", 300},
                   {"families", {"latest_lab_24h", "most_recent_value"}},
                   {"test_tasks_per_family", 20}});
  EXPECT_EQ(smaller->Spec().splits.at("test"), 40);
  EXPECT_EQ(smaller->Spec().splits.at("train"), 60);  // the default, 30
  std::map<std::string, int> families;
  std::vector<std::string> questions;
  for (int64_t i = 0; i < 80; ++i) {
    ResetRequest req;
    req.split = "test";
    req.task_index = i;
    const ResetResult r = env->Reset(req);
    ++families[r.info["task"]["family"].get<std::string>()];
    questions.push_back(r.observation[0].content);
  }
  EXPECT_EQ(families, (std::map<std::string, int>{{"latest_lab_24h", 40},
                                                  {"most_recent_value", 40}}));
  // A smaller selection is a prefix of each family's larger one.
  for (int64_t i = 0; i < 20; ++i) {
    ResetRequest req;
    req.split = "test";
    req.task_index = i;
    EXPECT_EQ(smaller->Reset(req).observation[0].content,
              questions[static_cast<size_t>(i)]);
  }
  try {
    EnvRegistry::Global().Create(
        "ehr_fhir", {{"families", {"latest_lab_24h", "lab_value"}}},
        "envs.0.options");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "envs.0.options.families[1]: unknown task family "
                  "\"lab_value\" (expected one of patient_lookup, "
                  "patient_age,",
                  0),
              0u)
        << e.what();
  }
}

TEST(EhrFhirEnvTest, BriefPromptHasTheQuestionWithoutTheCatalogue) {
  auto full = EnvRegistry::Global().Create("ehr_fhir");
  auto brief = EnvRegistry::Global().Create("ehr_fhir", {{"prompt", "brief"}});
  ResetRequest req;
  req.split = "test";
  req.task_index = 4;
  const std::string f = full->Reset(req).observation[0].content;
  const std::string b = brief->Reset(req).observation[0].content;
  const std::string question = f.substr(f.rfind("Question:"));
  EXPECT_EQ(b.substr(b.rfind("Question:")), question);
  EXPECT_NE(b.find("Use http://localhost:8080/fhir/ as the API base."),
            std::string::npos);
  EXPECT_NE(b.find("FINISH([answer1, answer2, ...])"), std::string::npos);
  EXPECT_NE(f.find("search Observation resources"), std::string::npos);
  EXPECT_EQ(b.find("search Observation resources"), std::string::npos);
  EXPECT_LT(b.size(), 900u);
  EXPECT_GT(f.size(), 3000u);
}

TEST(EhrFhirEnvTest, ClinicianReadsTheServerAndForgetsTheWindowWhenAsked) {
  const json options = {{"patients", 300},
                        {"families", {"latest_lab_24h", "most_recent_value"}},
                        {"test_tasks_per_family", 40}};
  // It answers from the replies it gets, so it is right on every task.
  const Score careful = Evaluate(options, "clinician", "test");
  EXPECT_EQ(careful.episodes, 80);
  EXPECT_EQ(careful.correct, careful.episodes);
  // Forgetting the window fails exactly where the newest magnesium is older
  // than 24 hours: the answer is -1 and it names the stale value.
  const Score forgetful =
      Evaluate(options, "clinician", "test", {{"forget_window", 1.0}});
  EXPECT_GT(forgetful.correct, 40);
  EXPECT_LT(forgetful.correct, 80);
  EXPECT_EQ(forgetful.failed_expecting_none,
            forgetful.episodes - forgetful.correct);
  // Half the episodes forget (seeded per episode): in between.
  const Score half =
      Evaluate(options, "clinician", "test", {{"forget_window", 0.5}});
  EXPECT_GT(half.correct, forgetful.correct);
  EXPECT_LT(half.correct, careful.correct);
  EXPECT_EQ(
      Evaluate(options, "clinician", "test", {{"forget_window", 0.5}}).correct,
      half.correct);

  try {
    ScriptedPolicyRegistry::Global().Create("ehr_fhir", "clinician", 0,
                                            {{"forget_window", 1.5}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "policy_options.forget_window: expected a value in [0, 1], "
                 "got 1.5");
  }
  // A family it has no procedure for is named.
  auto env =
      EnvRegistry::Global().Create("ehr_fhir", {{"families", {"referral"}}});
  ResetRequest req;
  req.split = "test";
  req.task_index = 0;
  const ResetResult reset = env->Reset(req);
  auto clinician =
      ScriptedPolicyRegistry::Global().Create("ehr_fhir", "clinician", 0);
  try {
    clinician->Act(reset.observation, reset.info);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "ehr_fhir clinician: task family \"referral\" has no "
                  "scripted procedure",
                  0),
              0u)
        << e.what();
  }
}

// configs/ehr_grpo.json (docs/training.md, "An EHR agent"): its env options
// give the splits the docs state, and its imperfect expert scores what they
// say on the held-out split (the clinician forgetting the window in 60% of
// episodes), between the careless and the careful clinician.
TEST(EhrFhirEnvTest, TheEhrGrpoConfigsSplitsAndExpert) {
  std::ifstream file(std::string(CLINRL_SOURCE_DIR) + "/configs/ehr_grpo.json");
  ASSERT_TRUE(file.good());
  const json config = json::parse(file);
  const json& options = config["envs"][0]["options"];
  const EnvSpec spec =
      EnvRegistry::Global().Create("ehr_fhir", options)->Spec();
  EXPECT_EQ(spec.splits.at("train"), 600);
  EXPECT_EQ(spec.splits.at("test"), 200);
  const json& sft = config["trainer"]["sft"];
  ASSERT_EQ(sft["demo_policy"], "clinician");
  const Score expert =
      Evaluate(options, "clinician", "test", sft["demo_policy_options"]);
  const Score careless =
      Evaluate(options, "clinician", "test", {{"forget_window", 1.0}});
  EXPECT_EQ(careless.correct, 113);  // 0.565, docs/envs/ehr_fhir.md
  EXPECT_GT(expert.correct, careless.correct);
  EXPECT_LT(expert.correct, 200);
}

TEST(EhrFhirEnvTest, MisspeltOptionsNameTheKey) {
  try {
    EnvRegistry::Global().Create("ehr_fhir", {{"max_turn", 4}},
                                 "envs.0.options");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "envs.0.options.max_turn: unknown key (did you mean "
                  "'max_turns'?)",
                  0),
              0u)
        << e.what();
  }
  try {
    EnvRegistry::Global().Create("ehr_fhir", {{"data_seed", -1}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "options.data_seed: got -1, expected a value >= 0");
  }
  auto env = EnvRegistry::Global().Create("ehr_fhir");
  ResetRequest req;
  req.options = {{"task_index", 3}};
  try {
    env->Reset(req);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "options.task_index: unknown key; no options are accepted "
                 "here");
  }
  EXPECT_THROW(ScriptedPolicyRegistry::Global().Create("ehr_fhir", "oracle", 0,
                                                       {{"answer_key", true}}),
               ConfigError);
}

TEST(EhrFhirEnvTest, SameSeedSameEpisodeAndIsolatedWrites) {
  auto a = EnvRegistry::Global().Create("ehr_fhir");
  auto b = EnvRegistry::Global().Create("ehr_fhir");
  ResetRequest req;
  req.split = "train";
  req.seed = 12345;
  const ResetResult ra = a->Reset(req);
  const ResetResult rb = b->Reset(req);
  EXPECT_EQ(ra.observation, rb.observation);
  const std::string patient =
      ra.info["reward_spec"]["components"][0]["params"]["patient"];
  const std::string post =
      "POST http://localhost:8080/fhir/ServiceRequest\n" +
      json{{"resourceType", "ServiceRequest"},
           {"status", "active"},
           {"intent", "order"},
           {"code", {{"text", "x"}}},
           {"subject", {{"reference", "Patient/" + patient}}}}
          .dump();
  const StepResult pa = a->Step(post);
  const StepResult pb = b->Step(post);
  EXPECT_EQ(pa.observation, pb.observation);  // same ids: w1 in each sandbox
  const std::string search =
      "GET http://localhost:8080/fhir/ServiceRequest?patient=" + patient;
  EXPECT_NE(a->Step(search).observation[0].content.find("\"total\":1"),
            std::string::npos);
  b.reset();  // closing b drops its sandbox; a still sees its own write only
  EXPECT_NE(a->Step(search).observation[0].content.find("\"total\":1"),
            std::string::npos);
}

// action_mode "tools" (docs/envs/ehr_fhir.md, "Tool calls"): the oracle
// solves the test split through fhir_post and finish as it does through the
// text grammar, and every baseline scores what it scores in text mode.
TEST(EhrFhirEnvTest, ToolsModeScoresAsTextMode) {
  for (const char* mode : {kStrictR4, kMedAgentBench}) {
    SCOPED_TRACE(mode);
    const json text = {{"grading", mode}};
    const json tools = {{"grading", mode}, {"action_mode", "tools"}};
    const Score oracle = Evaluate(tools, "oracle", "test");
    EXPECT_EQ(oracle.episodes, 100);
    EXPECT_EQ(oracle.correct, oracle.episodes);
    EXPECT_EQ(oracle.correct, Evaluate(text, "oracle", "test").correct);
    const Score empty = Evaluate(tools, "finish_empty", "test");
    EXPECT_EQ(empty.correct, empty.do_nothing);
    EXPECT_EQ(empty.correct, Evaluate(text, "finish_empty", "test").correct);
  }
  const json labs = {{"families", {"latest_lab_24h", "most_recent_value"}}};
  json labs_tools = labs;
  labs_tools["action_mode"] = "tools";
  const Score clinician = Evaluate(labs_tools, "clinician", "test");
  EXPECT_EQ(clinician.correct, clinician.episodes);
  // The random policy's malformed text stays invalid; it plays to the end.
  EXPECT_EQ(Evaluate(labs_tools, "random", "test").correct,
            Evaluate(labs, "random", "test").correct);
}

TEST(EhrFhirEnvTest, ToolsModeSpecAndPromptsDeclareTheTools) {
  const EnvSpec text = EnvRegistry::Global().Create("ehr_fhir")->Spec();
  EXPECT_TRUE(text.tools.empty());
  EXPECT_EQ(text.action_format, kAgentActionFormat);
  for (const char* prompt : {"full", "brief"}) {
    SCOPED_TRACE(prompt);
    auto text_env =
        EnvRegistry::Global().Create("ehr_fhir", {{"prompt", prompt}});
    auto tools_env = EnvRegistry::Global().Create(
        "ehr_fhir", {{"prompt", prompt}, {"action_mode", "tools"}});
    const EnvSpec spec = tools_env->Spec();
    EXPECT_EQ(spec.tools, AgentTools());
    EXPECT_EQ(spec.action_format, kAgentToolInstruction);
    EXPECT_EQ(spec.splits, text.splits);
    ResetRequest req;
    req.split = "test";
    req.task_index = 4;
    const ResetResult reset = tools_env->Reset(req);
    EXPECT_EQ(reset.info["action_mode"], "tools");
    EXPECT_EQ(text_env->Reset(req).info["action_mode"], "text");
    const std::string t = text_env->Reset(req).observation[0].content;
    const std::string p = reset.observation[0].content;
    EXPECT_EQ(p.find("FINISH("), std::string::npos) << p;
    EXPECT_NE(p.find(kAgentToolInstruction), std::string::npos) << p;
    // The grammar is swapped for the instruction; the rest is the same.
    std::string expected = t;
    expected.replace(t.find(kAgentActionFormat),
                     std::string(kAgentActionFormat).size(),
                     kAgentToolInstruction);
    const std::string note =
        " (GET ones through fhir_get, POST ones through fhir_post)";
    if (std::string(prompt) == "full") {
      expected.insert(expected.find("Functions:") + 9, note);
    }
    EXPECT_EQ(p, expected);
  }
}

// One episode step by step in both modes: each tool call gets the reply its
// text action gets, as a tool message; an invalid call is counted.
TEST(EhrFhirEnvTest, ToolsModeStepsRepliesAsTextMode) {
  auto text_env = EnvRegistry::Global().Create("ehr_fhir");
  auto tools_env =
      EnvRegistry::Global().Create("ehr_fhir", {{"action_mode", "tools"}});
  ResetRequest req;
  req.split = "test";
  req.task_index = 0;
  const std::string patient =
      text_env->Reset(req)
          .info["reward_spec"]["components"][0]["params"]["patient"];
  tools_env->Reset(req);
  const std::string get =
      "GET http://localhost:8080/fhir/Patient?identifier=" + patient;
  const StepResult text_get = text_env->Step(get);
  const StepResult tool_get = tools_env->Step(AgentActionAsToolCall(get));
  ASSERT_EQ(tool_get.observation.size(), 1u);
  EXPECT_EQ(tool_get.observation[0].role, "tool");
  EXPECT_EQ(text_get.observation[0].role, "user");
  EXPECT_EQ(tool_get.observation[0].content, text_get.observation[0].content);
  EXPECT_NE(tool_get.observation[0].content.find("\"total\":1"),
            std::string::npos);
  // The text grammar is not a tool call in tools mode.
  const StepResult bad = tools_env->Step(get);
  EXPECT_EQ(bad.observation[0].role, "tool");
  EXPECT_EQ(bad.observation[0].content,
            "Invalid action: expected exactly one tool call (fhir_get, "
            "fhir_post or finish) in <tool_call></tool_call> tags, got 0.");
  EXPECT_EQ(bad.info["invalid_actions"], 1);
  const std::string finish = "FINISH([\"" + patient + "\"])";
  const StepResult text_fin = text_env->Step(finish);
  const StepResult tool_fin = tools_env->Step(AgentActionAsToolCall(finish));
  EXPECT_TRUE(tool_fin.terminated);
  EXPECT_EQ(tool_fin.observation,
            Observation({{"tool", "The episode is finished."}}));
  EXPECT_EQ(tool_fin.info["ehr"], text_fin.info["ehr"]);
  EXPECT_EQ(tool_fin.info["grade"], text_fin.info["grade"]);
  EXPECT_EQ(tool_fin.info["metrics"]["invalid_actions"], 1);
  EXPECT_THROW(
      EnvRegistry::Global().Create("ehr_fhir", {{"action_mode", "json"}}),
      ConfigError);
}

}  // namespace
}  // namespace clinrl::envs::ehr
