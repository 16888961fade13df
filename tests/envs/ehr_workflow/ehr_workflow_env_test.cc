// ehr_workflow end to end. The tests act as a clinician would: they read the
// chart through the env's own GETs, decide by the rules the prompt states,
// write the orders as literal FHIR bodies, and check the per-checkpoint
// verdicts and rewards against values worked out by hand (k checkpoints, one
// missed: (k-1)/k).
#include "envs/ehr_workflow/ehr_workflow_env.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "envs/ehr_fhir/agent_action.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"
#include "rewards/composite_reward.h"

namespace clinrl::envs::ehr {
namespace {

const std::string kBase = "http://localhost:8080/fhir/";
// The task clock is 2023-11-13T10:15:00+00:00; these are worked by hand.
const std::string kNow = "2023-11-13T10:15:00+00:00";
const std::string kTomorrow8 = "2023-11-14T08:00:00+00:00";
const std::string kDay3At8 = "2023-11-16T08:00:00+00:00";
const std::string kDay7At8 = "2023-11-20T08:00:00+00:00";
const std::string kDay7At9 = "2023-11-20T09:00:00+00:00";

std::string Med(const std::string& patient, const std::string& ndc, double mg) {
  return "POST " + kBase + "MedicationRequest\n" +
         json{{"resourceType", "MedicationRequest"},
              {"status", "active"},
              {"intent", "order"},
              {"subject", {{"reference", "Patient/" + patient}}},
              {"authoredOn", kNow},
              {"medicationCodeableConcept",
               {{"coding",
                 json::array({{{"system", "http://hl7.org/fhir/sid/ndc"},
                               {"code", ndc}}})}}},
              {"dosageInstruction",
               json::array(
                   {{{"route",
                      {{"coding",
                        json::array({{{"system", "http://snomed.info/sct"},
                                      {"code", "26643006"}}})}}},
                     {"doseAndRate",
                      json::array({{{"doseQuantity",
                                     {{"value", mg},
                                      {"unit", "mg"},
                                      {"system", "http://unitsofmeasure.org"},
                                      {"code", "mg"}}}}})}}})}}
             .dump();
}

std::string Service(const std::string& patient, const std::string& system,
                    const std::string& code, const std::string& when) {
  return "POST " + kBase + "ServiceRequest\n" +
         json{{"resourceType", "ServiceRequest"},
              {"status", "active"},
              {"intent", "order"},
              {"subject", {{"reference", "Patient/" + patient}}},
              {"authoredOn", kNow},
              {"code",
               {{"coding",
                 json::array({{{"system", system}, {"code", code}}})}}},
              {"occurrenceDateTime", when}}
             .dump();
}

std::string Lab(const std::string& patient, const std::string& code,
                const std::string& when) {
  return Service(patient, "http://loinc.org", code, when);
}

bool HasCode(const json& concept, const std::string& code) {
  for (const auto& c : concept.value("coding", json::array())) {
    if (c.value("code", "") == code) return true;
  }
  return false;
}

// One episode of the env, driven by hand.
class Episode {
 public:
  Episode(const std::string& split, int64_t index) {
    ResetRequest r;
    r.split = split;
    r.task_index = index;
    reset_ = env_->Reset(r);
    patient_ = reset_.info["workflow"]["patient"].get<std::string>();
  }
  const std::string& patient() const { return patient_; }
  const json& info() const { return reset_.info; }
  std::string variant() const { return reset_.info["task"]["variant"]; }

  // The Bundle a GET answers.
  json Get(const std::string& query) {
    const StepResult s = env_->Step("GET " + kBase + query);
    EXPECT_FALSE(s.terminated || s.truncated);
    const std::string& text = s.observation.at(0).content;
    EXPECT_EQ(text.rfind("Here is the response from the GET request:", 0), 0u)
        << text;
    return json::parse(text.substr(text.find('\n') + 1));
  }
  json Newest(const std::string& code) {
    const json b = Get("Observation?patient=" + patient_ + "&code=" + code +
                       "&_sort=-date&_count=1");
    return b.at("entry").at(0).at("resource");
  }
  double NewestValue(const std::string& code) {
    return Newest(code).at("valueQuantity").at("value").get<double>();
  }
  bool PenicillinAllergy() {
    for (const auto& e :
         Get("AllergyIntolerance?patient=" + patient_).value("entry", json())) {
      if (HasCode(e["resource"]["code"], "7980")) return true;
    }
    return false;
  }
  json ActiveMeds() {
    return Get("MedicationRequest?patient=" + patient_ + "&status=active");
  }
  StepResult Act(const std::string& action) {
    StepResult s = env_->Step(action);
    EXPECT_FALSE(s.terminated || s.truncated) << action;
    return s;
  }
  void Post(const std::string& action) {
    const StepResult s = Act(action);
    EXPECT_EQ(s.observation.at(0).content.rfind(
                  "POST request accepted and executed successfully.", 0),
              0u)
        << s.observation.at(0).content;
  }
  StepResult Finish(const json& answer) {
    StepResult s = env_->Step("FINISH(" + answer.dump() + ")");
    EXPECT_TRUE(s.terminated);
    return s;
  }
  Env& env() { return *env_; }

 private:
  std::unique_ptr<Env> env_ =
      EnvRegistry::Global().Create("ehr_workflow", json::object());
  ResetResult reset_;
  std::string patient_;
};

int64_t Count(const std::string& split) {
  return EhrWorkflowEnv::Create(json::object())->Spec().splits.at(split);
}

// The first task of the test split whose family is `family` and for which
// `pick` (reading the chart through a scratch episode) says yes.
int64_t FindTask(const std::string& family,
                 const std::function<bool(Episode&)>& pick) {
  for (int64_t i = 0; i < Count("test"); ++i) {
    Episode e("test", i);
    if (e.info()["task"]["family"] == family && pick(e)) return i;
  }
  ADD_FAILURE() << "no test task of " << family << " fits";
  return 0;
}

void ExpectCheckpoints(const StepResult& s,
                       const std::map<std::string, int>& want) {
  const json& m = s.info.at("metrics");
  for (const auto& [name, met] : want) {
    EXPECT_EQ(m.at("checkpoint_" + name), met)
        << name << ": " << s.info["grade"].dump();
  }
  EXPECT_EQ(m.at("checkpoints_total"), static_cast<int64_t>(want.size()));
}

// Plays med_reconciliation by the prompt's rules; `amoxicillin_anyway`
// orders the contraindicated drug, `skip_famotidine` leaves a step out.
StepResult Reconcile(Episode& e, bool amoxicillin_anyway,
                     bool skip_famotidine) {
  const bool allergic = e.PenicillinAllergy();
  const double cr = e.NewestValue("2160-0");
  const bool reduced = cr >= 1.5;
  e.Post(Med(e.patient(),
             allergic && !amoxicillin_anyway ? "0069-3070-30" : "0093-3109-01",
             500));
  if (!reduced) e.Post(Med(e.patient(), "0904-5855-61", 400));
  if (!skip_famotidine) {
    e.Post(Med(e.patient(), "0006-0963-31", reduced ? 20 : 40));
  }
  return e.Finish({cr, allergic ? "Yes" : "no"});
}

TEST(EhrWorkflowEnv, MedReconciliationAllCheckpointsMet) {
  const int64_t i = FindTask("med_reconciliation",
                             [](Episode& e) { return e.PenicillinAllergy(); });
  Episode e("test", i);
  const StepResult s = Reconcile(e, false, false);
  EXPECT_EQ(s.reward, 1.0);
  EXPECT_EQ(s.info["metrics"]["correct"], 1);
  ExpectCheckpoints(s, {{"creatinine_reported", 1},
                        {"allergy_reported", 1},
                        {"antibiotic_allergy_safe", 1},
                        {"nsaid_renal_safe", 1},
                        {"famotidine_renal_dose", 1}});
}

TEST(EhrWorkflowEnv, ContraindicatedOrderFailsItsCheckpoint) {
  const int64_t i = FindTask("med_reconciliation",
                             [](Episode& e) { return e.PenicillinAllergy(); });
  Episode e("test", i);
  const StepResult s = Reconcile(e, true, false);
  EXPECT_DOUBLE_EQ(s.reward, 4.0 / 5.0);
  EXPECT_EQ(s.info["metrics"]["correct"], 0);
  ExpectCheckpoints(s, {{"creatinine_reported", 1},
                        {"allergy_reported", 1},
                        {"antibiotic_allergy_safe", 0},
                        {"nsaid_renal_safe", 1},
                        {"famotidine_renal_dose", 1}});
}

TEST(EhrWorkflowEnv, ReducedRenalFunctionNeedsTheAdjustedDose) {
  const int64_t i = FindTask("med_reconciliation", [](Episode& e) {
    return e.NewestValue("2160-0") >= 1.5;
  });
  {
    Episode e("test", i);
    EXPECT_EQ(Reconcile(e, false, false).reward, 1.0);
  }
  // The full dose and the NSAID, as if the creatinine had not been read.
  Episode e("test", i);
  const bool allergic = e.PenicillinAllergy();
  const double cr = e.NewestValue("2160-0");
  e.Post(Med(e.patient(), allergic ? "0069-3070-30" : "0093-3109-01", 500));
  e.Post(Med(e.patient(), "0904-5855-61", 400));
  e.Post(Med(e.patient(), "0006-0963-31", 40));
  const StepResult s = e.Finish({cr, allergic ? "yes" : "no"});
  EXPECT_DOUBLE_EQ(s.reward, 3.0 / 5.0);
  ExpectCheckpoints(s, {{"creatinine_reported", 1},
                        {"allergy_reported", 1},
                        {"antibiotic_allergy_safe", 1},
                        {"nsaid_renal_safe", 0},
                        {"famotidine_renal_dose", 0}});
}

TEST(EhrWorkflowEnv, OneMissedStepCostsOneCheckpoint) {
  const int64_t i = FindTask("med_reconciliation",
                             [](Episode& e) { return !e.PenicillinAllergy(); });
  Episode e("test", i);
  const StepResult s = Reconcile(e, false, true);
  EXPECT_DOUBLE_EQ(s.reward, 4.0 / 5.0);
  EXPECT_EQ(s.info["metrics"]["correct"], 0);
  EXPECT_EQ(s.info["metrics"]["checkpoint_famotidine_renal_dose"], 0);
  EXPECT_EQ(s.info["metrics"]["checkpoints_met"], 4);
}

bool OnLisinopril(Episode& e) {
  for (const auto& entry : e.ActiveMeds().value("entry", json::array())) {
    if (HasCode(entry["resource"]["medicationCodeableConcept"], "314076")) {
      return true;
    }
  }
  return false;
}

TEST(EhrWorkflowEnv, LisinoprilOrderSetWithFollowUpLabs) {
  const int64_t i = FindTask("order_set_followup", [](Episode& e) {
    return e.variant() == "lisinopril";
  });
  for (const std::string creatinine_when : {kDay7At8, kDay3At8}) {
    Episode e("test", i);
    if (!OnLisinopril(e)) e.Post(Med(e.patient(), "68180-0513-01", 10));
    e.Post(Lab(e.patient(), "2823-3", kDay7At8));
    e.Post(Lab(e.patient(), "2160-0", creatinine_when));
    const StepResult s = e.Finish({e.NewestValue("2823-3")});
    const bool right = creatinine_when == kDay7At8;
    EXPECT_DOUBLE_EQ(s.reward, right ? 1.0 : 3.0 / 4.0);
    ExpectCheckpoints(s, {{"lisinopril_order", 1},
                          {"potassium_followup", 1},
                          {"creatinine_followup", right ? 1 : 0},
                          {"potassium_reported", 1}});
  }
}

TEST(EhrWorkflowEnv, DuplicateOrderFailsTheOrderCheckpoint) {
  const int64_t i = FindTask("order_set_followup", [](Episode& e) {
    return e.variant() == "lisinopril" && !OnLisinopril(e);
  });
  Episode e("test", i);
  e.Post(Med(e.patient(), "68180-0513-01", 10));
  e.Post(Med(e.patient(), "68180-0513-01", 10));
  e.Post(Lab(e.patient(), "2823-3", kDay7At8));
  e.Post(Lab(e.patient(), "2160-0", kDay7At8));
  const StepResult s = e.Finish({e.NewestValue("2823-3")});
  EXPECT_DOUBLE_EQ(s.reward, 3.0 / 4.0);
  EXPECT_EQ(s.info["metrics"]["checkpoint_lisinopril_order"], 0);
}

TEST(EhrWorkflowEnv, WarfarinNeedsBothInrDraws) {
  const int64_t i = FindTask("order_set_followup", [](Episode& e) {
    return e.variant() == "warfarin";
  });
  for (bool both : {true, false}) {
    Episode e("test", i);
    e.Post(Med(e.patient(), "0056-0172-70", 5));
    e.Post(Lab(e.patient(), "6301-6", kDay3At8));
    if (both) e.Post(Lab(e.patient(), "6301-6", kDay7At8));
    // The answer as a string is read as the number it holds.
    const StepResult s = e.Finish({fmt::format("{}", e.NewestValue("2160-0"))});
    EXPECT_DOUBLE_EQ(s.reward, both ? 1.0 : 3.0 / 4.0);
    ExpectCheckpoints(s, {{"warfarin_order", 1},
                          {"inr_day3", 1},
                          {"inr_day7", both ? 1 : 0},
                          {"creatinine_reported", 1}});
  }
}

// Reads what discharge_check asks for: [systolic, potassium, active orders].
json DischargeFacts(Episode& e) {
  double systolic = 0;
  const json panel = e.Newest("85354-9");
  for (const auto& c : panel.at("component")) {
    if (HasCode(c["code"], "8480-6")) systolic = c["valueQuantity"]["value"];
  }
  const double k = e.NewestValue("2823-3");
  const json meds = e.ActiveMeds();
  return {systolic, k, meds.at("total")};
}

TEST(EhrWorkflowEnv, DischargeCheck) {
  for (bool low : {true, false}) {
    SCOPED_TRACE(low ? "low potassium" : "normal potassium");
    const int64_t i = FindTask("discharge_check", [&](Episode& e) {
      return (e.NewestValue("2823-3") < 3.5) == low;
    });
    {
      Episode e("test", i);
      const json facts = DischargeFacts(e);
      e.Post(Service(e.patient(), "http://snomed.info/sct", "390906007",
                     kDay7At9));
      if (low) e.Post(Lab(e.patient(), "2823-3", kTomorrow8));
      const StepResult s = e.Finish(facts);
      EXPECT_EQ(s.reward, 1.0) << s.info["grade"].dump();
      EXPECT_EQ(s.info["metrics"]["correct"], 1);
    }
    // The visit only, no answer: 1 or 2 of 5 (a normal potassium needs no
    // recheck, so leaving it out is right).
    Episode e("test", i);
    e.Post(
        Service(e.patient(), "http://snomed.info/sct", "390906007", kDay7At9));
    const StepResult s = e.Finish(json::array());
    EXPECT_DOUBLE_EQ(s.reward, low ? 1.0 / 5.0 : 2.0 / 5.0);
    ExpectCheckpoints(s, {{"systolic_reported", 0},
                          {"potassium_reported", 0},
                          {"active_medications_reported", 0},
                          {"followup_visit", 1},
                          {"potassium_recheck", low ? 0 : 1}});
  }
}

TEST(EhrWorkflowEnv, UnneededRecheckFailsItsCheckpoint) {
  const int64_t i = FindTask("discharge_check", [](Episode& e) {
    return e.NewestValue("2823-3") >= 3.5;
  });
  Episode e("test", i);
  const json facts = DischargeFacts(e);
  e.Post(Service(e.patient(), "http://snomed.info/sct", "390906007", kDay7At9));
  e.Post(Lab(e.patient(), "2823-3", kTomorrow8));
  const StepResult s = e.Finish(facts);
  EXPECT_DOUBLE_EQ(s.reward, 4.0 / 5.0);
  EXPECT_EQ(s.info["metrics"]["checkpoint_potassium_recheck"], 0);
}

TEST(EhrWorkflowEnv, ParseErrorsAreObservations) {
  Episode e("test", 0);
  StepResult s = e.Act("please order the labs");
  EXPECT_NE(s.observation.at(0).content.find("Invalid action"),
            std::string::npos);
  EXPECT_EQ(s.info["invalid_actions"], 1);
  s = e.Act("POST " + kBase + "MedicationRequest\n{not json");
  EXPECT_NE(s.observation.at(0).content.find("the body is not JSON"),
            std::string::npos);
  EXPECT_EQ(s.info["invalid_actions"], 2);
  s = e.Act("GET http://elsewhere.example/fhir/Patient");
  EXPECT_NE(s.observation.at(0).content.find("Invalid action"),
            std::string::npos);
  // A POST the server refuses is not invalid grammar, and changes nothing.
  s = e.Act("POST " + kBase +
            "MedicationRequest\n{\"resourceType\": "
            "\"MedicationRequest\"}");
  EXPECT_NE(s.observation.at(0).content.find("failed with status 4"),
            std::string::npos);
  const StepResult end = e.Finish(json::array());
  EXPECT_EQ(end.info["metrics"]["invalid_actions"], 3);
  EXPECT_EQ(end.info["metrics"]["writes"], 0);
}

TEST(EhrWorkflowEnv, TakesEhrFhirsActionsWithItsPromptHead) {
  const auto workflow = EhrWorkflowEnv::Create(json::object());
  const auto fhir = EnvRegistry::Global().Create("ehr_fhir", json::object());
  EXPECT_EQ(workflow->Spec().action_format, fhir->Spec().action_format);
  EXPECT_EQ(workflow->Spec().action_format, kAgentActionFormat);
  ResetRequest r;
  r.split = "test";
  r.task_index = 0;
  const std::string prompt = workflow->Reset(r).observation.at(0).content;
  EXPECT_NE(prompt.find(kAgentActionFormat), std::string::npos);
}

TEST(EhrWorkflowEnv, TruncationGradesTheWritesButIsNeverCorrect) {
  const int64_t i = FindTask("discharge_check", [](Episode& e) {
    return e.NewestValue("2823-3") >= 3.5;
  });
  Episode e("test", i);
  e.Post(Service(e.patient(), "http://snomed.info/sct", "390906007", kDay7At9));
  const StepResult s = e.env().Truncate();
  EXPECT_TRUE(s.truncated);
  EXPECT_DOUBLE_EQ(s.reward, 2.0 / 5.0);
  EXPECT_EQ(s.info["metrics"]["correct"], 0);
}

// The reward plug-ins score the reset's reward spec on the final info to
// the env's own reward, and its success to `correct`.
TEST(EhrWorkflowEnv, RewardSpecScoresLikeTheEnv) {
  const int64_t i = FindTask("med_reconciliation",
                             [](Episode& e) { return !e.PenicillinAllergy(); });
  for (bool skip : {false, true}) {
    Episode e("test", i);
    const StepResult s = Reconcile(e, false, skip);
    Trajectory t;
    t.reward_spec = e.info()["reward_spec"];
    t.info = s.info;
    t.turns.push_back({"assistant", "FINISH([])"});
    const RewardResult r = rewards::ScoreTrajectory(t, {0});
    EXPECT_NEAR(r.total, s.reward, 1e-12);
    EXPECT_EQ(rewards::IsSuccess(r, t.reward_spec), !skip);
  }
}

struct PolicyScore {
  double reward = 0;
  int64_t correct = 0, episodes = 0;
};

PolicyScore Play(const std::string& policy, const std::string& split,
                 const json& options = json::object()) {
  auto env = EnvRegistry::Global().Create("ehr_workflow", options);
  const bool tools = options.value("action_mode", "text") == "tools";
  const EnvSpec spec = env->Spec();
  PolicyScore out;
  for (int64_t i = 0; i < spec.splits.at(split); ++i) {
    ResetRequest req;
    req.split = split;
    req.task_index = i;
    ResetResult reset = env->Reset(req);
    auto p = ScriptedPolicyRegistry::Global().Create("ehr_workflow", policy,
                                                     static_cast<uint64_t>(i));
    Observation transcript = reset.observation;
    json info = reset.info;
    for (int64_t turn = 0; turn < spec.max_turns; ++turn) {
      const std::string action = p->Act(transcript, info);
      transcript.push_back({"assistant", action});
      StepResult step = env->Step(action);
      for (auto& m : step.observation) {
        EXPECT_EQ(m.role, tools ? "tool" : "user");
        transcript.push_back(m);
      }
      info = step.info;
      if (step.terminated || step.truncated) {
        out.reward += step.reward;
        out.correct += info["metrics"]["correct"].get<int64_t>();
        if (policy == "oracle" && step.reward != 1.0) {
          ADD_FAILURE() << split << " task " << i << ": "
                        << info["grade"].dump();
        }
        break;
      }
    }
    ++out.episodes;
  }
  out.reward /= static_cast<double>(out.episodes);
  return out;
}

TEST(EhrWorkflowEnv, OracleSolvesEveryTestTaskAndBaselinesDoNot) {
  const PolicyScore oracle = Play("oracle", "test");
  EXPECT_EQ(oracle.correct, oracle.episodes);
  EXPECT_GE(oracle.episodes, 20);
  const PolicyScore partial = Play("partial", "test");
  const PolicyScore empty = Play("finish_empty", "test");
  const PolicyScore random = Play("random", "test");
  EXPECT_EQ(partial.correct, 0);
  EXPECT_EQ(empty.correct, 0);
  EXPECT_LE(random.correct, 1);
  // Partial credit sits between doing nothing and doing everything.
  EXPECT_GT(partial.reward, empty.reward);
  EXPECT_LT(partial.reward, 0.5);
  EXPECT_LT(random.reward, 0.3);
}

// action_mode "tools" (ehr_fhir's tools, docs/envs/ehr_fhir.md): the
// policies' actions go as tool calls and score exactly what they score as
// text.
TEST(EhrWorkflowEnv, ToolsModeScoresAsTextMode) {
  const json tools = {{"action_mode", "tools"}};
  const EnvSpec spec =
      EnvRegistry::Global().Create("ehr_workflow", tools)->Spec();
  ASSERT_EQ(spec.tools.size(), 3u);
  EXPECT_EQ(spec.tools[0]["function"]["name"], "fhir_get");
  for (const char* policy : {"oracle", "partial", "finish_empty", "random"}) {
    SCOPED_TRACE(policy);
    const PolicyScore text = Play(policy, "test");
    const PolicyScore tool = Play(policy, "test", tools);
    EXPECT_EQ(tool.correct, text.correct);
    EXPECT_DOUBLE_EQ(tool.reward, text.reward);
  }
}

TEST(EhrWorkflowEnv, SplitsHoldDisjointPatients) {
  std::map<std::string, std::set<std::string>> patients;
  for (const std::string split : {"train", "validation", "test"}) {
    const int64_t n = Count(split);
    EXPECT_GE(n, 3) << split;
    for (int64_t i = 0; i < n; ++i) {
      Episode e(split, i);
      patients[split].insert(e.patient());
      EXPECT_EQ(WorkflowSplitOf(e.patient()), split);
    }
  }
  for (const auto& p : patients["test"]) {
    EXPECT_FALSE(patients["train"].count(p) || patients["validation"].count(p))
        << p;
  }
  for (const auto& p : patients["validation"]) {
    EXPECT_FALSE(patients["train"].count(p)) << p;
  }
  // ehr_fhir's test patients are held out here too.
  auto fhir = EnvRegistry::Global().Create("ehr_fhir", json::object());
  for (int64_t i = 0; i < fhir->Spec().splits.at("test"); ++i) {
    ResetRequest r;
    r.split = "test";
    r.task_index = i;
    const std::string p =
        fhir->Reset(r)
            .info["reward_spec"]["components"][0]["params"]["patient"];
    EXPECT_FALSE(patients["train"].count(p) || patients["validation"].count(p))
        << p;
  }
}

TEST(EhrWorkflowEnv, TasksAreAPureFunctionOfSplitAndIndex) {
  Episode a("validation", 2), b("validation", 2);
  EXPECT_EQ(a.info(), b.info());
}

TEST(EhrWorkflowEnv, BadOptionsNameTheKey) {
  try {
    EhrWorkflowEnv::Create({{"families", {"discharge"}}}, "envs.0.options");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("envs.0.options.families[0]"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(EhrWorkflowEnv::Create({{"max_turn", 3}}), ConfigError);
  auto only = EhrWorkflowEnv::Create(
      {{"families", {"discharge_check"}}, {"eval_tasks_per_family", 4}});
  EXPECT_EQ(only->Spec().splits.at("test"), 4);
}

}  // namespace
}  // namespace clinrl::envs::ehr
