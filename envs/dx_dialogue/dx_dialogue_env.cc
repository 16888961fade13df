#include "envs/dx_dialogue/dx_dialogue_env.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "envs/dx_dialogue/dx_action.h"
#include "envs/dx_dialogue/dx_tools.h"
#include "envs/env_options.h"
#include "envs/env_registry.h"

namespace clinrl::envs::dx {

const char kDxActionFormat[] =
    "One action per turn: ASK: <symptom> | EXAM: <system> | TEST: <test> | "
    "DISPOSITION: <home|clinic|emergency> | DIAGNOSIS: <condition>";

std::string RankedActionFormat(int64_t max_differential) {
  return fmt::format(
      "One action per turn: ASK: <symptom> | EXAM: <system> | TEST: <test> | "
      "DISPOSITION: <home|clinic|emergency> | DIAGNOSIS: 1. <condition>; 2. "
      "<condition>; ... (a ranked differential, most likely first, at most "
      "{})",
      max_differential);
}

double ReciprocalRank(int64_t rank) {
  return rank > 0 ? 1.0 / static_cast<double>(rank) : 0.0;
}

namespace {

// Followed by the action format of the episode.
const char kSystemPromptLead[] =
    "You are a doctor. Find the diagnosis in few turns at low cost. ";

const char kInvalidAction[] =
    "Invalid action. Use ASK: <symptom>, EXAM: <system>, TEST: <test>, "
    "DISPOSITION: <home|clinic|emergency> or DIAGNOSIS: <condition>.";

void CheckProbability(double p, const std::string& path) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw ConfigError(
        fmt::format("{}: expected a probability in [0, 1], got {}", path, p));
  }
}

// The option `patient` with kind rules: the tag and nothing else.
struct RulePatientChoice {
  std::string kind = "rules";
  template <class V>
  void Visit(V& v) {
    v.Enum("kind", kind, {"rules", "llm"}, "the patient");
  }
};

std::string DispositionOf(const std::string& text) {
  const std::string t = " " + NormalizeText(text) + " ";
  auto has = [&](const char* w) {
    return t.find(std::string(" ") + w + " ") != std::string::npos;
  };
  for (const char* w : {"emergency", "er", "ed", "hospital", "admit", "urgent",
                        "ambulance", "911", "resus"}) {
    if (has(w)) return "emergency";
  }
  for (const char* w : {"clinic", "outpatient", "follow", "gp", "primary",
                        "specialist", "referral"}) {
    if (has(w)) return "clinic";
  }
  for (const char* w : {"home", "discharge", "self", "reassure"}) {
    if (has(w)) return "home";
  }
  return "";
}

std::string FormatVitals(const VitalSigns& v) {
  return fmt::format("T {:.1f} C, HR {}, BP {}/{}, RR {}, SpO2 {}%",
                     v.temperature_c, v.heart_rate, v.systolic, v.diastolic,
                     v.respiratory_rate, v.spo2);
}

// Whitespace- and comma-separated words with their dots kept, for ICD-10
// codes ("I21.9," -> "I21.9").
std::vector<std::string> CodeCandidates(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text + " ") {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.') {
      word.push_back(c);
    } else if (!word.empty()) {
      while (!word.empty() && word.back() == '.') word.pop_back();
      if (!word.empty()) out.push_back(word);
      word.clear();
    }
  }
  return out;
}

std::string Capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') {
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
  }
  return s;
}

}  // namespace

void DxEpisodeOptions::Check(const std::string& path) const {
  CheckProbability(noise.vague, path + ".noise.vague");
  CheckProbability(noise.irrelevant, path + ".noise.irrelevant");
  if (max_turns < 2 || max_turns > 64) {
    throw ConfigError(
        fmt::format("{}.max_turns: expected an integer in [2, 64], got {}",
                    path, max_turns));
  }
  if (max_differential < 1 || max_differential > 10) {
    throw ConfigError(fmt::format(
        "{}.max_differential: expected an integer in [1, 10], got {}", path,
        max_differential));
  }
}

PatientOptions DxEpisodeOptions::patient() const {
  // The schema's Enum has checked the name already.
  return {ParsePersona(persona, "persona"), noise};
}

DxEpisodeOptions DxEpisodeOptions::FromJson(const json& j,
                                            const std::string& path,
                                            const DxEpisodeOptions& base) {
  DxEpisodeOptions start = base;
  if (j.is_object() && j.contains("noise")) start.noise = PatientNoise{};
  DxEpisodeOptions o = ReadOptions<DxEpisodeOptions>(j, path, start);
  o.Check(path);
  return o;
}

DxDialogueOptions DxDialogueOptions::FromJson(const json& j,
                                              const std::string& path) {
  DxDialogueOptions o = ReadOptions<DxDialogueOptions>(j, path);
  o.Check(path);
  if (!(o.cost_budget > 0.0) || !std::isfinite(o.cost_budget)) {
    throw ConfigError(fmt::format(
        "{}.cost_budget: expected a number > 0, got {}", path, o.cost_budget));
  }
  for (const auto& [key, value] :
       {std::pair<const char*, double>{"info_gain_reward", o.info_gain_reward},
        {"redundant_penalty", o.redundant_penalty}}) {
    if (!(value >= 0.0) || !std::isfinite(value)) {
      throw ConfigError(fmt::format("{}.{}: expected a number >= 0, got {}",
                                    path, key, value));
    }
  }
  const json& patient = o.patient_choice;
  const std::string patient_path = path + ".patient";
  if (patient.is_object() && patient.contains("kind") &&
      patient["kind"] == "llm") {
    o.llm_patient = LlmPatientOptions::FromJson(patient, patient_path);
  } else {
    ReadOptions<RulePatientChoice>(patient, patient_path);
  }
  return o;
}

std::unique_ptr<Env> DxDialogueEnv::Create(const json& options,
                                           const std::string& path) {
  return std::make_unique<DxDialogueEnv>(
      DxDialogueOptions::FromJson(options, path));
}

DxDialogueEnv::DxDialogueEnv(DxDialogueOptions options)
    : options_(std::move(options)), episode_options_(options_) {
  kb_ = KnowledgeBase::Shared(options_.knowledge_base);
  bank_ = CaseBank::For(kb_);
}

EnvSpec DxDialogueEnv::Spec() const {
  EnvSpec s;
  s.name = "dx_dialogue";
  s.version = "1";
  s.action_format = options_.ranked()
                        ? RankedActionFormat(options_.max_differential)
                        : std::string(kDxActionFormat);
  s.max_turns = options_.max_turns;
  s.splits = bank_->Sizes();
  if (options_.tools()) {
    // The tools reach the model through the chat template; the grammar text
    // would contradict them.
    s.action_format = kDxToolsInstruction;
    s.tools = DxTools(*kb_, options_.ranked(), options_.max_differential);
  }
  return s;
}

namespace {

// The diagnosis component of a ranked episode: 1 / rank as a sum of top-k
// hits, since the plug-ins score pass or fail. With K the list cap,
// component k (numeric on info.differential.rank: passes when rank <= k)
// weighs 1/k - 1/(k+1) for k < K and 1/K for k = K; a rank r then collects
// sum_{k=r}^{K-1} (1/k - 1/(k+1)) + 1/K = 1/r, and an absent rank nothing.
void RankComponents(int64_t max_differential, json& spec) {
  json components = json::array();
  for (int64_t k = 1; k <= max_differential; ++k) {
    const double kd = static_cast<double>(k);
    const double weight =
        k < max_differential ? 1.0 / kd - 1.0 / (kd + 1.0) : 1.0 / kd;
    components.push_back({{"name", fmt::format("diagnosis_top{}", k)},
                          {"plugin", "numeric"},
                          {"weight", weight},
                          {"params",
                           {{"expected", 1},
                            {"abs_tol", k - 1},
                            {"answer_field", "differential.rank"}}}});
  }
  for (size_t i = 1; i < spec["components"].size(); ++i) {
    components.push_back(spec["components"][i]);
  }
  spec["components"] = components;
  spec["success"] = "diagnosis_top1";
}

}  // namespace

json DxDialogueEnv::RewardSpec(const ClinicalCase& c, double total_cost) const {
  const Condition& cond = kb_->conditions[c.condition];
  json must_ask = json::array();
  for (int f : c.must_ask) must_ask.push_back(kb_->findings[f].name);
  json flags = json::array();
  for (int r : c.red_flags) flags.push_back(kb_->red_flags[r].name);
  const bool red_flag = !c.red_flags.empty();
  json spec = {
      {"components",
       {{{"name", "diagnosis"},
         {"plugin", "icd10"},
         {"weight", 1.0},
         {"params",
          {{"expected", cond.icd10}, {"answer_field", "diagnosis_icd10"}}}},
        {{"name", "cost"},
         {"plugin", "cost"},
         {"weight", 0.1},
         {"params", {{"budget", options_.cost_budget}}}},
        {{"name", "safety"},
         {"plugin", "safety"},
         {"weight", 0.5},
         {"params",
          {{"red_flag", red_flag}, {"required_disposition", "emergency"}}}},
        {{"name", "format"},
         {"plugin", "format"},
         {"weight", 0.1},
         {"params", {{"grammar", "dx_dialogue"}}}}}},
      {"success", "diagnosis"},
      {"expected_icd10", cond.icd10},
      {"condition", cond.name},
      {"must_ask", must_ask},
      {"red_flag", red_flag},
      {"red_flags", flags},
      {"required_disposition", c.required_disposition},
      {"total_cost", total_cost},
  };
  if (episode_options_.ranked()) {
    RankComponents(episode_options_.max_differential, spec);
  }
  if (episode_options_.tools()) {
    // No DISPOSITION: line in tool calls: safety reads the env's own
    // reading (info.disposition), format checks the call syntax.
    for (json& component : spec["components"]) {
      if (component["name"] == "safety") {
        component["params"]["answer_field"] = "disposition";
      } else if (component["name"] == "format") {
        component["params"] = {{"grammar", "tool_call"}};
      }
    }
  }
  return spec;
}

ResetResult DxDialogueEnv::Reset(const ResetRequest& request) {
  episode_options_ =
      DxEpisodeOptions::FromJson(request.options, "options", options_);
  const int64_t size = bank_->Size(request.split);  // validates the split
  int64_t index = 0;
  if (request.task_index) {
    index = *request.task_index;
  } else if (request.seed) {
    index = static_cast<int64_t>(MixSeed(static_cast<uint64_t>(*request.seed)) %
                                 static_cast<uint64_t>(size));
  }
  case_ = &bank_->Get(request.split, index);  // validates the index
  split_ = request.split;
  task_index_ = index;
  const PatientOptions patient = episode_options_.patient();
  if (options_.llm_patient) {
    patient_ = std::make_unique<LlmPatient>(kb_, *case_, patient,
                                            *options_.llm_patient);
  } else {
    patient_ = std::make_unique<RulePatient>(kb_, *case_, patient);
  }
  active_ = true;
  turn_ = 0;
  invalid_actions_ = 0;
  cost_ = 0.0;
  disposition_.clear();
  asked_.clear();
  differential_.clear();
  rank_ = 0;
  posterior_ = std::make_unique<DiagnosticPosterior>(kb_);
  posterior_->Start(case_->age, case_->male, case_->chief_complaint);
  seen_findings_ = {case_->chief_complaint};
  seen_tests_.clear();

  RulePatient presenter(kb_, *case_, patient);
  ResetResult r;
  const std::string format =
      episode_options_.tools() ? std::string(kDxToolsInstruction)
      : episode_options_.ranked()
          ? RankedActionFormat(episode_options_.max_differential)
          : std::string(kDxActionFormat);
  r.observation = {{"system", kSystemPromptLead + format},
                   {"user", presenter.Presentation()}};
  r.info = BaseInfo();
  if (episode_options_.ranked()) {
    // What the scripted policies (and an agent's harness) read to answer
    // with a list.
    r.info["diagnosis_format"] = "ranked";
    r.info["max_differential"] = episode_options_.max_differential;
  }
  if (episode_options_.tools()) {
    // What the scripted policies read to answer with tool calls; the tools
    // themselves, for an agent whose env options left them out of the spec
    // (action_mode set per episode).
    r.info["action_mode"] = "tools";
    r.info["tools"] = DxTools(*kb_, episode_options_.ranked(),
                              episode_options_.max_differential);
  }
  r.info["reward_spec"] = RewardSpec(*case_, 0.0);
  r.info["task"] = {{"split", split_}, {"task_index", task_index_}};
  r.info["case"] = {
      {"age", case_->age},
      {"sex", case_->male ? "male" : "female"},
      {"chief_complaint", kb_->findings[case_->chief_complaint].name}};
  return r;
}

DxAction DxDialogueEnv::ReadAction(const std::string& text,
                                   std::string* tool_error) const {
  if (!episode_options_.tools()) return ParseAction(text);
  return DxActionFromToolCalls(text,
                               DxTools(*kb_, episode_options_.ranked(),
                                       episode_options_.max_differential),
                               tool_error);
}

json DxDialogueEnv::BaseInfo() const {
  return {{"turn", turn_},
          {"max_turns", episode_options_.max_turns},
          {"cost", cost_},
          {"invalid_actions", invalid_actions_}};
}

std::string DxDialogueEnv::Examine(int system, json& revealed) {
  const ExamSystem& s = kb_->systems[system];
  cost_ += s.cost;
  std::string present;
  for (int f : s.signs) {
    const bool yes = case_->Has(f);
    revealed.push_back(
        {{"finding", kb_->findings[f].name}, {"answer", yes ? "yes" : "no"}});
    if (yes) present += (present.empty() ? "" : ", ") + kb_->findings[f].name;
  }
  if (s.name == "vitals") {
    return fmt::format("Vitals: {}.", FormatVitals(case_->vitals));
  }
  return fmt::format("{}: {}.", Capitalized(s.name),
                     present.empty() ? std::string("normal") : present);
}

double DxDialogueEnv::EvidenceReward(const std::string& type, int exam_system,
                                     const json& revealed, json& info) {
  const double h = posterior_->Entropy();
  double gain = 0;
  bool news = false;
  if (type == "exam" && exam_system >= 0) {
    for (const auto& x : revealed) {
      const int f = kb_->FindingIndex(x.value("finding", ""));
      news = news || (f >= 0 && !seen_findings_.count(f));
    }
    if (news) gain = h - posterior_->ExpectedEntropyAfterExam(exam_system);
  } else {
    for (const auto& x : revealed) {
      if (x.contains("test")) {
        const int t = kb_->TestIndex(x["test"].get<std::string>());
        if (t < 0 || seen_tests_.count(t)) continue;
        news = true;
        gain += h - posterior_->ExpectedEntropyAfterTest(t);
      } else {
        const int f = kb_->FindingIndex(x.value("finding", ""));
        if (f < 0 || seen_findings_.count(f)) continue;
        news = true;
        if (kb_->findings[f].askable()) {
          gain += h - posterior_->ExpectedEntropyAfterAsk(f);
        }
      }
    }
  }
  // The evidence, once, as the oracle takes it (envs/dx_dialogue/
  // oracle_policy.cc): a repeat would count its likelihood twice.
  for (const auto& x : revealed) {
    if (x.contains("test")) {
      const int t = kb_->TestIndex(x["test"].get<std::string>());
      if (t < 0 || !seen_tests_.insert(t).second) continue;
      const auto& results = kb_->tests[t].results;
      const auto it =
          std::find(results.begin(), results.end(), x.value("result", ""));
      if (it != results.end()) {
        posterior_->ObserveTest(t, static_cast<int>(it - results.begin()));
      }
      continue;
    }
    const int f = kb_->FindingIndex(x.value("finding", ""));
    if (f < 0 || !seen_findings_.insert(f).second) continue;
    const std::string answer = x.value("answer", "");
    if (type == "exam") {
      posterior_->ObserveSign(f, answer == "yes");
    } else if (kb_->findings[f].askable()) {
      posterior_->ObserveAnswer(f, answer);
    }
  }
  info["information_gain"] = std::max(0.0, gain);
  return news ? options_.info_gain_reward * std::max(0.0, gain)
              : -options_.redundant_penalty;
}

std::string DxDialogueEnv::ResolveDiagnosis(const std::string& text,
                                            std::string* code,
                                            std::string* name) const {
  code->clear();
  name->clear();
  int c = kb_->condition_matcher.Exact(text);
  if (c < 0) {
    // A code anywhere in the text ("I21.9", "I21.9 acute MI").
    for (const auto& word : CodeCandidates(text)) {
      *code = CanonicalIcd10(word);
      if (!code->empty()) break;
    }
    if (!code->empty()) c = kb_->ConditionByCode(*code);
  }
  if (c < 0 && code->empty()) {
    const auto m = kb_->condition_matcher.Match(text);
    if (m.size() == 1) c = m[0];
    // A differential is not a commitment: ask for one diagnosis.
    if (m.size() > 1)
      return fmt::format("Name one diagnosis, not {}.", m.size());
  }
  if (c < 0 && code->empty()) {
    return fmt::format(
        "Unknown diagnosis \"{}\". Name a condition or an ICD-10 code.", text);
  }
  if (c >= 0) {
    *code = CanonicalIcd10(kb_->conditions[c].icd10);
    *name = kb_->conditions[c].name;
  }
  return "";
}

std::string DxDialogueEnv::ReadDifferential(const std::string& argument) {
  differential_.clear();
  rank_ = 0;
  const std::vector<std::string> items = SplitDifferential(argument);
  const int64_t cap = episode_options_.max_differential;
  // "DIAGNOSIS: 1" or ";" leaves no item once rank markers are dropped; a
  // differential needs at least one (RecordDifferential reads the first).
  if (items.empty()) {
    return "List at least one diagnosis: DIAGNOSIS: 1. <condition>; 2. "
           "<condition>.";
  }
  if (static_cast<int64_t>(items.size()) > cap) {
    return fmt::format(
        "List at most {} diagnoses, not {}: DIAGNOSIS: 1. <condition>; 2. "
        "<condition>.",
        cap, items.size());
  }
  std::vector<std::string> codes;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string code, name;
    const std::string wrong = ResolveDiagnosis(items[i], &code, &name);
    if (!wrong.empty()) return fmt::format("Item {}: {}", i + 1, wrong);
    codes.push_back(code);
  }
  const std::string truth =
      CanonicalIcd10(kb_->conditions[case_->condition].icd10);
  for (size_t i = 0; i < codes.size() && rank_ == 0; ++i) {
    if (codes[i] == truth) rank_ = static_cast<int64_t>(i) + 1;
  }
  differential_ = std::move(codes);
  return "";
}

std::string DxDialogueEnv::RecordDifferential(std::string* given_code,
                                              std::string* given_name,
                                              json& action_info) const {
  json names = json::array();
  std::string listed;
  for (size_t i = 0; i < differential_.size(); ++i) {
    const int c = kb_->ConditionByCode(differential_[i]);
    const std::string shown =
        c >= 0 ? kb_->conditions[c].name : differential_[i];
    names.push_back(shown);
    listed += fmt::format("{}{}. {}", i ? "; " : "", i + 1, shown);
  }
  *given_code = differential_.front();
  *given_name = names.front().get<std::string>();
  action_info["target"] = *given_name;
  action_info["differential"] = names;
  return fmt::format("Differential recorded: {}.", listed);
}

std::string DxDialogueEnv::ExamAction(const std::string& argument,
                                      json& action_info, json& revealed,
                                      bool* invalid) {
  int s = kb_->system_matcher.Exact(argument);
  if (s < 0) {
    const auto m = kb_->system_matcher.Match(argument);
    if (!m.empty()) s = m[0];
  }
  if (s < 0) {
    *invalid = true;
    std::string names;
    for (const auto& x : kb_->systems)
      names += (names.empty() ? "" : ", ") + x.name;
    return fmt::format("Unknown exam \"{}\". Systems: {}.", argument, names);
  }
  action_info["target"] = kb_->systems[s].name;
  return Examine(s, revealed);
}

std::string DxDialogueEnv::TestAction(const std::string& argument,
                                      json& action_info, json& revealed,
                                      bool* invalid) {
  int t = kb_->test_matcher.Exact(argument);
  if (t < 0) {
    const auto m = kb_->test_matcher.Match(argument);
    if (!m.empty()) t = m[0];
  }
  if (t < 0) {
    *invalid = true;
    return fmt::format(
        "Unknown test \"{}\". Order one test by name, e.g. TEST: cbc.",
        argument);
  }
  const MedicalTest& test = kb_->tests[t];
  cost_ += test.cost;
  const std::string& result = test.results[case_->test_results[t]];
  action_info["target"] = test.name;
  revealed.push_back({{"test", test.name}, {"result", result}});
  return fmt::format("{}: {}.", test.name, result);
}

StepResult DxDialogueEnv::Step(const std::string& action_text) {
  if (!active_) {
    throw BadRequest(
        "step: no episode in progress (never reset, or it ended); expected "
        "reset first");
  }
  ++turn_;
  StepResult r;
  std::string tool_error;
  const DxAction action = ReadAction(action_text, &tool_error);
  json revealed = json::array();
  json action_info = {{"type", ActionTypeName(action.type)}};
  std::string text;
  std::string patient_fallback;
  std::string given_code;
  std::string given_name;
  bool invalid = false;

  switch (action.type) {
    case ActionType::kAsk: {
      PatientReply reply = patient_->Answer(action.argument);
      text = reply.text;
      revealed = reply.revealed;
      for (const auto& x : revealed)
        asked_.insert(x["finding"].get<std::string>());
      if (auto* llm = dynamic_cast<LlmPatient*>(patient_.get())) {
        patient_fallback = llm->last_fallback();
      }
      break;
    }
    case ActionType::kExam:
      text = ExamAction(action.argument, action_info, revealed, &invalid);
      break;
    case ActionType::kTest:
      text = TestAction(action.argument, action_info, revealed, &invalid);
      break;
    case ActionType::kDisposition: {
      const std::string d = DispositionOf(action.argument);
      if (d.empty()) {
        invalid = true;
        text = fmt::format(
            "Unknown disposition \"{}\". Use home, clinic or emergency.",
            action.argument);
      } else {
        disposition_ = d;
        action_info["target"] = d;
        text = fmt::format("Disposition: {}.", d);
      }
      break;
    }
    case ActionType::kDiagnosis: {
      const std::string wrong =
          episode_options_.ranked()
              ? ReadDifferential(action.argument)
              : ResolveDiagnosis(action.argument, &given_code, &given_name);
      if (!wrong.empty()) {
        invalid = true;
        text = wrong;
        break;
      }
      if (episode_options_.ranked()) {
        text = RecordDifferential(&given_code, &given_name, action_info);
      } else {
        action_info["target"] = given_name.empty() ? given_code : given_name;
        text = fmt::format("Diagnosis recorded: {}.",
                           given_name.empty() ? action.argument : given_name);
      }
      r.terminated = true;
      break;
    }
    case ActionType::kInvalid:
      invalid = true;
      text = tool_error.empty() ? std::string(kInvalidAction)
                                : fmt::format("Invalid tool call: {}. {}",
                                              tool_error, kDxToolsInstruction);
      break;
  }
  if (invalid) {
    ++invalid_actions_;
    action_info["type"] = "invalid";
  }
  if (!r.terminated && turn_ >= episode_options_.max_turns) {
    r.truncated = true;
    text += " Turn limit reached.";
  }
  // A tool's result goes back as the tool's message (the chat template shows
  // it as a <tool_response>).
  r.observation = {{episode_options_.tools() ? "tool" : "user", text}};
  r.info = BaseInfo();
  const std::string type = action_info["type"].get<std::string>();
  if (type == "ask" || type == "exam" || type == "test") {
    int system = -1;
    if (type == "exam")
      system = kb_->system_matcher.Exact(action_info.value("target", ""));
    r.reward = EvidenceReward(type, system, revealed, r.info);
  } else if (invalid) {
    r.reward = -options_.redundant_penalty;
  }
  r.info["action"] = action_info;
  r.info["revealed"] = revealed;
  if (!patient_fallback.empty()) r.info["patient_fallback"] = patient_fallback;
  if (r.terminated || r.truncated) {
    active_ = false;
    const Condition& truth = kb_->conditions[case_->condition];
    AddEpisodeEndInfo(r.terminated && given_code == CanonicalIcd10(truth.icd10),
                      given_code, r.info);
  }
  return r;
}

StepResult DxDialogueEnv::Truncate() {
  if (!active_) {
    throw BadRequest(
        "truncate: no episode in progress (never reset, or it ended); "
        "expected reset first");
  }
  active_ = false;
  StepResult r;
  r.truncated = true;
  r.info = BaseInfo();
  AddEpisodeEndInfo(/*correct=*/false, /*given_code=*/"", r.info);
  return r;
}

void DxDialogueEnv::AddEpisodeEndInfo(bool correct,
                                      const std::string& given_code,
                                      json& info) const {
  const Condition& truth = kb_->conditions[case_->condition];
  int64_t asked_must = 0;
  for (int f : case_->must_ask)
    asked_must += asked_.count(kb_->findings[f].name);
  const double recall =
      case_->must_ask.empty()
          ? 1.0
          : static_cast<double>(asked_must) / case_->must_ask.size();
  const bool red_flag = !case_->red_flags.empty();
  info["metrics"] = {
      {"correct", correct ? 1 : 0},
      {"cost", cost_},
      {"turns", turn_},
      {"invalid_actions", invalid_actions_},
      {"red_flag", red_flag ? 1 : 0},
      {"disposition_correct",
       disposition_ == case_->required_disposition ? 1 : 0},
      {"must_ask_recall", recall},
  };
  if (!given_code.empty()) {
    // What the icd10 reward reads (params.answer_field): the env's own
    // reading of the diagnosis, names and aliases resolved.
    const int c = kb_->ConditionByCode(given_code);
    info["diagnosis_icd10"] = c >= 0 ? kb_->conditions[c].icd10 : given_code;
  }
  if (episode_options_.ranked()) AddRankInfo(info);
  info["disposition"] =
      disposition_.empty() ? json(nullptr) : json(disposition_);
  info["answer"] = {{"condition", truth.name}, {"icd10", truth.icd10}};
  info["reward_spec"] = RewardSpec(*case_, cost_);
}

void DxDialogueEnv::AddRankInfo(json& info) const {
  json& metrics = info["metrics"];
  metrics["rank"] = rank_;
  metrics["reciprocal_rank"] = ReciprocalRank(rank_);
  for (int64_t k : {1, 3, 5}) {
    metrics[fmt::format("top{}", k)] = rank_ > 0 && rank_ <= k ? 1 : 0;
  }
  // What the reward spec's top-k components read (differential.rank). An
  // absent rank is the word "none", never a missing field: the numeric
  // plug-in would then read the last number of the last turn instead.
  json codes = json::array();
  for (const auto& code : differential_) {
    const int c = kb_->ConditionByCode(code);
    codes.push_back(c >= 0 ? kb_->conditions[c].icd10 : code);
  }
  info["differential"] = {{"icd10", codes},
                          {"rank", rank_ > 0 ? json(rank_) : json("none")}};
}

}  // namespace clinrl::envs::dx

CLINRL_REGISTER_ENV(dx_dialogue, ::clinrl::envs::dx::DxDialogueEnv::Create);
