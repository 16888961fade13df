// The env end to end: the oracle scores 100%, FINISH([]) scores exactly the
// share of "do nothing" tasks, over the embedded server and over HTTP.
#include "envs/ehr_fhir/ehr_fhir_env.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "envs/ehr_fhir/fhir_http_server.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::ehr {
namespace {

struct Score {
  int64_t correct = 0, episodes = 0, do_nothing = 0;
};

// Plays every task of `split` with a scripted policy, the way `clinrl env
// eval` does: accuracy is the mean of the final info.metrics.correct.
Score Evaluate(const json& options, const std::string& policy,
               const std::string& split) {
  auto env = EnvRegistry::Global().Create("ehr_fhir", options);
  const EnvSpec spec = env->Spec();
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
    auto p = ScriptedPolicyRegistry::Global().Create("ehr_fhir", policy, 0);
    Observation transcript = reset.observation;
    json info = reset.info;
    for (int64_t turn = 0; turn < spec.max_turns; ++turn) {
      const std::string action = p->Act(transcript, info);
      transcript.push_back({"assistant", action});
      StepResult step = env->Step(action);
      for (auto& m : step.observation) transcript.push_back(m);
      info = step.info;
      if (step.terminated || step.truncated) {
        EXPECT_TRUE(info.contains("metrics")) << info.dump();
        s.correct += info["metrics"]["correct"].get<int64_t>();
        EXPECT_EQ(info["metrics"]["cost"], 0);
        EXPECT_EQ(step.reward, info["metrics"]["correct"].get<double>());
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

}  // namespace
}  // namespace clinrl::envs::ehr
