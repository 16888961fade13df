// The med_calc env: answers parsed and graded as MedCalc-Bench grades them,
// every split holding every calculator, notes that state every value the
// ground truth uses (read back here with regular expressions, not with the
// env's writer), the reward spec scored by the real plug-ins agreeing with
// the env, and the baselines' accuracy.
#include "envs/med_calc/med_calc_env.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "envs/med_calc/answer.h"
#include "envs/scripted_episode.h"
#include "envs/scripted_policy.h"
#include "rewards/composite_reward.h"

namespace clinrl::envs::med_calc {
namespace {

using F = Finding;

TEST(MedCalcAnswer, TheLastAnswerLineCountsAndItsFirstNumberIsTheAnswer) {
  EXPECT_EQ(ParseAnswer("ANSWER: 42").value, 42.0);
  EXPECT_EQ(ParseAnswer("CrCl = 140-60 ...\nANSWER: 12.5 mL/min").value, 12.5);
  EXPECT_EQ(ParseAnswer("ANSWER: 3\nOn reflection, no.\nanswer: 4").value, 4.0);
  EXPECT_EQ(ParseAnswer("So the score is:\n**Answer:** -1").value, -1.0);
  EXPECT_EQ(ParseAnswer("ANSWER: 1,250 mL").value, 1250.0);
  EXPECT_EQ(ParseAnswer("Final answer: about 7 points").value, 7.0);
  EXPECT_EQ(ParseAnswer("ANSWER: 12, from 3 + 9").value, 12.0);
  EXPECT_EQ(ParseAnswer("ANSWER: .5 L").value, 0.5);
  EXPECT_EQ(ParseAnswer("ANSWER: -.5").value, -0.5);
  // Digits inside a score's name are not the answer.
  EXPECT_EQ(ParseAnswer("ANSWER: CHA2DS2-VASc = 3").value, 3.0);
  EXPECT_EQ(ParseAnswer("ANSWER: SpO2-adjusted 88.5").value, 88.5);
}

TEST(MedCalcAnswer, AnActionWithoutAUsableAnswerSaysWhatIsMissing) {
  for (const char* action :
       {"", "the score is 4", "ANSWER: none", "ANSWER:\n4", "\xff\xfe{{{"}) {
    const ParsedAnswer parsed = ParseAnswer(action);
    EXPECT_FALSE(parsed.value) << action;
    EXPECT_NE(parsed.error.find("ANSWER"), std::string::npos) << action;
  }
}

TEST(MedCalcAnswer, FormulasPassWithinFivePercentAndScoresOnlyExactly) {
  EXPECT_TRUE(IsCorrect(104.9, 100.0, false));
  EXPECT_TRUE(IsCorrect(95.1, 100.0, false));
  EXPECT_FALSE(IsCorrect(105.1, 100.0, false));
  EXPECT_FALSE(IsCorrect(94.9, 100.0, false));
  EXPECT_TRUE(IsCorrect(1.94, 2.0, false));   // 3% low
  EXPECT_FALSE(IsCorrect(1.89, 2.0, false));  // 5.5% low
  EXPECT_TRUE(IsCorrect(3.0, 3.0, true));
  EXPECT_FALSE(IsCorrect(3.1, 3.0, true));
  EXPECT_FALSE(IsCorrect(4.0, 3.0, true));
  EXPECT_TRUE(IsCorrect(5.5, 5.5, true));
  EXPECT_FALSE(IsCorrect(5.0, 5.5, true));
  EXPECT_TRUE(IsCorrect(-1.0, -1.0, true));
}

// The split's calculators, by task.
std::map<std::string, std::set<std::string>> CalculatorsBySplit(Env& env) {
  std::map<std::string, std::set<std::string>> seen;
  for (const auto& [split, count] : env.Spec().splits) {
    for (int64_t i = 0; i < count; ++i) {
      ResetRequest request;
      request.split = split;
      request.task_index = i;
      seen[split].insert(env.Reset(request).info["calculator"]);
    }
  }
  return seen;
}

TEST(MedCalcEnv, EverySplitHoldsEveryCalculator) {
  auto env = MedCalcEnv::Create(json::object());
  const auto spec = env->Spec();
  EXPECT_EQ(spec.splits.at("train"), 600);
  EXPECT_EQ(spec.splits.at("validation"), 100);
  EXPECT_EQ(spec.splits.at("test"), 150);
  for (const auto& [split, names] : CalculatorsBySplit(*env)) {
    EXPECT_EQ(names.size(), kNumCalculators) << split;
  }
  auto subset = MedCalcEnv::Create(
      {{"calculators", {"curb65", "ckd_epi_2021", "qtc_bazett"}}});
  for (const auto& [split, names] : CalculatorsBySplit(*subset)) {
    EXPECT_EQ(names,
              (std::set<std::string>{"curb65", "ckd_epi_2021", "qtc_bazett"}))
        << split;
  }
}

TEST(MedCalcEnv, SplitsHoldDifferentPatients) {
  std::set<std::string> train_notes;
  auto env = MedCalcEnv::Create(json::object());
  ResetRequest request;
  for (int64_t i = 0; i < 600; ++i) {
    request.task_index = i;
    train_notes.insert(env->Reset(request).observation[1].content);
  }
  EXPECT_EQ(train_notes.size(), 600u);
  for (const char* split : {"validation", "test"}) {
    request.split = split;
    for (int64_t i = 0; i < 100; ++i) {
      request.task_index = i;
      EXPECT_FALSE(
          train_notes.count(env->Reset(request).observation[1].content))
          << split << " " << i;
    }
  }
}

// ---- The note read back with regular expressions ----

double Number(const std::string& note, const std::string& pattern) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(note, m, std::regex(pattern)))
      << "no match for '" << pattern << "' in: " << note;
  return m.size() > 1 ? std::stod(m[1].str()) : -1.0;
}

// Index of the phrase of `phrases` found in the note (its score), or -1.
int64_t Graded(const std::string& note,
               const std::vector<std::string>& phrases) {
  int64_t found = -1;
  for (size_t i = 0; i < phrases.size(); ++i) {
    if (!phrases[i].empty() && note.find(phrases[i]) != std::string::npos) {
      EXPECT_EQ(found, -1) << "two grades in: " << note;
      found = static_cast<int64_t>(i);
    }
  }
  return found;
}

// The numbers of the note as a reader sees them.
Patient ReadNote(const std::string& note) {
  Patient p;
  p.age = static_cast<int64_t>(Number(note, "(\\d+)-year-old (man|woman)"));
  p.female = note.find("-year-old woman") != std::string::npos;
  p.temperature_c = Number(note, "temperature ([0-9.]+) °C");
  p.heart_rate = static_cast<int64_t>(Number(note, "heart rate (\\d+)"));
  p.systolic = static_cast<int64_t>(Number(note, "pressure (\\d+)/"));
  p.diastolic = static_cast<int64_t>(Number(note, "pressure \\d+/(\\d+)"));
  p.resp_rate = static_cast<int64_t>(Number(note, "respiratory rate (\\d+)"));
  p.weight_kg = Number(note, "Weight ([0-9.]+) kg");
  p.height_cm = static_cast<int64_t>(Number(note, "height (\\d+) cm"));
  p.qt_ms = static_cast<int64_t>(Number(note, "QT interval of (\\d+) msec"));
  p.sodium = static_cast<int64_t>(Number(note, "sodium (\\d+) mEq/L"));
  p.potassium = Number(note, "potassium ([0-9.]+) mEq/L");
  p.chloride = static_cast<int64_t>(Number(note, "chloride (\\d+) mEq/L"));
  p.bicarbonate =
      static_cast<int64_t>(Number(note, "bicarbonate (\\d+) mEq/L"));
  p.bun = static_cast<int64_t>(Number(note, "BUN (\\d+) mg/dL"));
  p.creatinine = Number(note, "creatinine ([0-9.]+) mg/dL");
  p.glucose = static_cast<int64_t>(Number(note, "glucose (\\d+) mg/dL"));
  p.albumin = Number(note, "albumin ([0-9.]+) g/dL");
  p.calcium = Number(note, "calcium ([0-9.]+) mg/dL");
  p.hemoglobin = Number(note, "hemoglobin ([0-9.]+) g/dL");
  p.bilirubin = Number(note, "bilirubin ([0-9.]+) mg/dL");
  p.inr = Number(note, "INR ([0-9.]+)\\.");
  p.gcs_eye = Graded(note, {"", "not open the eyes", "eyes only to pain",
                            "eyes to voice", "eyes spontaneously"});
  p.gcs_verbal = Graded(
      note, {"", "no verbal response", "incomprehensible",
             "inappropriate words", "confused and dis", "fully oriented"});
  p.gcs_motor =
      Graded(note, {"", "no motor response", "decerebrate", "decorticate",
                    "withdraws from pain", "localizes", "obeys commands"});
  return p;
}

// Words that say a finding is present, and words that say it is absent.
struct FindingWords {
  Finding finding;
  std::string present, absent;
};
const std::vector<FindingWords> kWords = {
    {F::kHeartFailure,
     "history: congestive heart failure|, congestive heart "
     "failure| and congestive heart failure",
     "no history of congestive heart failure"},
    {F::kHypertension, "hypertension", "no history of hypertension"},
    {F::kDiabetes, "type 2 diabetes", "no history of diabetes"},
    {F::kStrokeOrTia, "prior ischemic stroke", "no history of stroke"},
    {F::kVascularDisease, "prior myocardial infarction and",
     "no history of vascular disease"},
    {F::kDialysis, "on hemodialysis", "no history of dialysis"},
    {F::kCirrhosis, "cirrhosis", "no history of liver disease"},
    {F::kPriorMajorBleeding, "bleeding episode",
     "no history of major bleeding"},
    {F::kLabileInr, "labile INRs on warfarin", "no history of labile INR"},
    {F::kAntiplateletOrNsaid, "takes aspirin", "no antiplatelet"},
    {F::kAlcoholExcess, "12 alcoholic drinks", "fewer than 2 drinks"},
    {F::kPriorDvtOrPe, "previous deep vein", "no history of previous deep"},
    {F::kActiveCancer, "chemotherapy within", "no history of malignancy"},
    {F::kRecentSurgery, "hip replacement 3 weeks ago",
     "no history of recent surgery"},
    {F::kDvtSigns, "calf is swollen and tender", "no calf tenderness"},
    {F::kPeMostLikely, "embolism to be the most likely",
     "alternative diagnosis more likely"},
    {F::kHemoptysis, "coughed up blood", "no hemoptysis"},
    {F::kCough, "has a cough", "has no cough"},
    {F::kTonsillarExudate, "swollen with exudate", "neither swollen"},
    {F::kTenderCervicalNodes, "nodes are swollen and tender",
     "no anterior cervical lymphadenopathy"},
    {F::kMelena, "(melena)", "no melena"},
    {F::kSyncope, "(syncope)", "no syncope"},
};

bool Mentions(const std::string& note, const std::string& alternatives) {
  return std::regex_search(note, std::regex(alternatives));
}

// The findings a calculator reads, as the note states them; each must be
// stated one way or the other.
void ReadFindings(const std::string& note, Calculator c, Patient* p) {
  for (Finding f : FindingsReadBy(c)) {
    for (const FindingWords& w : kWords) {
      if (w.finding != f) continue;
      const bool absent = note.find(w.absent) != std::string::npos;
      const bool present = Mentions(note, w.present) && !absent;
      EXPECT_TRUE(present || absent)
          << TextOf(f).name << " is not stated in: " << note;
      p->Set(f, present);
    }
  }
}

TEST(MedCalcEnv, TheNoteStatesEveryValueTheGroundTruthUses) {
  auto env = MedCalcEnv::Create(json::object());
  for (const auto& [split, count] : env->Spec().splits) {
    for (int64_t i = 0; i < count; ++i) {
      const MedCalcTask task = MedCalcEnv::TaskFor(
          split, i, dynamic_cast<MedCalcEnv&>(*env).enabled());
      ResetRequest request;
      request.split = split;
      request.task_index = i;
      const std::string note = env->Reset(request).observation[1].content;
      Patient read = ReadNote(note);
      ReadFindings(note, task.calculator, &read);
      EXPECT_EQ(GroundTruth(task.calculator, read), task.expected)
          << split << " " << i << " " << InfoOf(task.calculator).name << "\n"
          << note;
      EXPECT_EQ(read.Confused(),
                note.find("altered mental status is new") != std::string::npos);
      ASSERT_FALSE(HasFailure()) << split << " " << i;
    }
  }
}

// Plays every test task with a registered policy; returns the accuracy and
// checks that the reward spec, scored by the plug-ins, gives the env's reward.
double PlayTestSplit(const std::string& policy_name) {
  auto env = MedCalcEnv::Create(json::object());
  double correct = 0;
  const int64_t count = env->Spec().splits.at("test");
  for (int64_t i = 0; i < count; ++i) {
    auto policy =
        ScriptedPolicyRegistry::Global().Create("med_calc", policy_name, i);
    ScriptedEpisodeRequest request;
    request.env_name = "med_calc";
    request.split = "test";
    request.task_index = i;
    const Trajectory t = PlayScriptedEpisode(*env, *policy, request);
    const double env_correct = t.info["metrics"]["correct"].get<double>();
    EXPECT_EQ(rewards::ScoreTrajectory(t).total, env_correct) << i;
    EXPECT_EQ(t.step_rewards.back(), env_correct) << i;
    correct += env_correct;
  }
  return correct / static_cast<double>(count);
}

TEST(MedCalcEnv, OracleIsRightAndRandomIsFarBelowAsTheRewardSpecScoresThem) {
  EXPECT_GE(PlayTestSplit("oracle"), 0.95);
  EXPECT_LE(PlayTestSplit("random"), 0.35);
}

TEST(MedCalcEnv, RewardSpecGradesFormulasWithinFivePercentAndScoresExactly) {
  auto env = MedCalcEnv::Create(
      {{"calculators", {"mean_arterial_pressure", "glasgow_coma_scale"}}});
  for (int64_t index : {0, 1}) {
    ResetRequest request;
    request.split = "test";
    request.task_index = index;
    const ResetResult reset = env->Reset(request);
    const double expected =
        reset.info["reward_spec"]["components"][0]["params"]["expected"];
    const bool score = index == 1;
    for (double factor : {1.0, 1.04, 0.96, 1.06, 0.94}) {
      const double answer = expected * factor;
      env->Reset(request);
      const StepResult step = env->Step(fmt::format("ANSWER: {}", answer));
      Trajectory t;
      t.env = "med_calc";
      t.reward_spec = reset.info["reward_spec"];
      t.info = step.info;
      const bool want =
          factor == 1.0 || (!score && std::abs(factor - 1) < 0.05);
      EXPECT_EQ(step.reward, want ? 1.0 : 0.0) << expected << " " << answer;
      EXPECT_EQ(rewards::ScoreTrajectory(t).total, step.reward);
    }
  }
}

TEST(MedCalcEnv, AnInvalidReplySaysWhatIsWrongAndTheSecondEndsTheEpisode) {
  auto env = MedCalcEnv::Create(json::object());
  env->Reset({});
  StepResult s = env->Step("The score is four.");
  EXPECT_FALSE(s.terminated || s.truncated);
  EXPECT_EQ(s.info["invalid_actions"], 1);
  EXPECT_NE(s.observation[0].content.find("ANSWER: <number>"),
            std::string::npos);
  s = env->Step("ANSWER: four");
  EXPECT_TRUE(s.truncated);
  EXPECT_EQ(s.info["invalid_actions"], 2);
  EXPECT_EQ(s.info["metrics"]["correct"], 0.0);
  EXPECT_EQ(s.info["metrics"]["cost"], 0.0);
  EXPECT_FALSE(s.info.contains("answer"));
  EXPECT_THROW(env->Step("ANSWER: 4"), BadRequest);
}

TEST(MedCalcEnv, BadOptionsAreRefusedNamingTheKey) {
  const auto message = [](const json& options) {
    try {
      MedCalcEnv::Create(options, "envs.0.options");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"calculators", {"curb65", "curb_65"}}})
                .find("envs.0.options.calculators[1]: unknown calculator "
                      "'curb_65'"),
            std::string::npos);
  EXPECT_NE(message({{"calculators", {"bmi", "bmi"}}})
                .find("envs.0.options.calculators[1]: 'bmi' is listed twice"),
            std::string::npos);
  EXPECT_NE(message({{"max_turns", 5}}).find("envs.0.options.max_turns"),
            std::string::npos);
  EXPECT_NE(message({{"max_turns", 0}}).find("envs.0.options.max_turns"),
            std::string::npos);
  EXPECT_NE(message({{"max_turn", 2}}).find("envs.0.options.max_turn"),
            std::string::npos);
  EXPECT_NE(
      message({{"calculators", "curb65"}}).find("envs.0.options.calculators"),
      std::string::npos);
}

}  // namespace
}  // namespace clinrl::envs::med_calc
