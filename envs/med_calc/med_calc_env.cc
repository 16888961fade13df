#include "envs/med_calc/med_calc_env.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "envs/env_options.h"
#include "envs/env_registry.h"
#include "envs/med_calc/answer.h"
#include "envs/med_calc/clinical_note.h"

namespace clinrl::envs::med_calc {

namespace {

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The enabled calculators: those named in `names` (in that order), or all.
std::vector<Calculator> EnabledCalculators(
    const std::vector<std::string>& names, const std::string& path) {
  std::vector<Calculator> enabled;
  for (size_t i = 0; i < names.size(); ++i) {
    Calculator c;
    if (!CalculatorNamed(names[i], &c)) {
      throw ConfigError(fmt::format(
          "{}.calculators[{}]: unknown calculator '{}'; expected one of: {}",
          path, i, names[i], JoinNames(CalculatorNames())));
    }
    if (std::find(enabled.begin(), enabled.end(), c) != enabled.end()) {
      throw ConfigError(fmt::format("{}.calculators[{}]: '{}' is listed twice",
                                    path, i, names[i]));
    }
    enabled.push_back(c);
  }
  if (enabled.empty()) {
    for (size_t i = 0; i < kNumCalculators; ++i) {
      enabled.push_back(static_cast<Calculator>(i));
    }
  }
  return enabled;
}

std::string FormatNumber(double value) { return fmt::format("{}", value); }

}  // namespace

MedCalcEnv::MedCalcEnv(MedCalcOptions options)
    : options_(std::move(options)),
      enabled_(EnabledCalculators(options_.calculators, "options")) {}

std::unique_ptr<Env> MedCalcEnv::Create(const json& options,
                                        const std::string& path) {
  MedCalcOptions read = ReadOptions<MedCalcOptions>(options, path);
  if (read.max_turns > kMaxTurnsLimit) {
    throw ConfigError(fmt::format(
        "{}.max_turns: expected at most {} (one answer, a few retries after "
        "an invalid one), got {}",
        path, kMaxTurnsLimit, read.max_turns));
  }
  EnabledCalculators(read.calculators, path);  // names the bad key
  return std::make_unique<MedCalcEnv>(std::move(read));
}

EnvSpec MedCalcEnv::Spec() const {
  EnvSpec s;
  s.name = "med_calc";
  s.version = "1.0";
  s.action_format =
      "Reply with any short reasoning you need, then end with one line "
      "'ANSWER: <number>' in the unit or form the question asks for (the "
      "last ANSWER line counts).";
  s.max_turns = options_.max_turns;
  s.splits = {{"train", 600}, {"validation", 100}, {"test", 150}};
  return s;
}

MedCalcTask MedCalcEnv::TaskFor(const std::string& split, int64_t index,
                                const std::vector<Calculator>& enabled) {
  MedCalcTask task;
  task.calculator = enabled[static_cast<size_t>(index) % enabled.size()];
  task.patient = GeneratePatient(split, index, task.calculator);
  task.expected = GroundTruth(task.calculator, task.patient);
  return task;
}

json MedCalcEnv::RewardSpec() const {
  // The numeric plug-in reads the number the env parsed (info.answer), so
  // the reward and metrics.correct grade the same number the same way.
  const bool score = InfoOf(task_.calculator).score;
  return {{"components",
           json::array({{{"name", "answer"},
                         {"plugin", "numeric"},
                         {"weight", 1.0},
                         {"params",
                          {{"expected", task_.expected},
                           {"abs_tol", 0.0},
                           {"rel_tol", score ? 0.0 : kFormulaTolerance},
                           {"answer_field", "answer"}}}}})},
          {"success", "answer"}};
}

ResetResult MedCalcEnv::Reset(const ResetRequest& request) {
  ReadOptions<NoOptions>(request.options, "options");
  const EnvSpec spec = Spec();
  const auto split = spec.splits.find(request.split);
  if (split == spec.splits.end()) {
    throw BadRequest(fmt::format(
        "reset.split: got '{}', expected one of: test, train, validation",
        request.split));
  }
  const int64_t index = TaskIndexOf(request, split->second);
  task_ = TaskFor(request.split, index, enabled_);
  answer_.reset();
  turns_ = 0;
  invalid_actions_ = 0;
  done_ = false;
  const CalculatorInfo& info = InfoOf(task_.calculator);
  ResetResult r;
  r.observation = {
      {"system",
       "You are a clinician who computes clinical scores and formulas from "
       "patient notes. " +
           spec.action_format},
      {"user",
       fmt::format("Patient note:\n{}\n\nQuestion: {}",
                   WriteNote(task_.patient, task_.calculator), info.question)}};
  // `task` lets the scripted oracle rebuild the patient
  // (docs/envs/med_calc.md).
  r.info = {{"task_index", index},
            {"calculator", info.name},
            {"task",
             {{"split", request.split},
              {"task_index", index},
              {"calculator", info.name}}},
            {"max_turns", options_.max_turns},
            {"reward_spec", RewardSpec()},
            {"invalid_actions", 0}};
  return r;
}

StepResult MedCalcEnv::Step(const std::string& action) {
  if (done_) {
    throw BadRequest("med_calc: step after the episode ended; reset first");
  }
  ++turns_;
  StepResult r;
  const ParsedAnswer parsed = ParseAnswer(action);
  if (!parsed.value) {
    ++invalid_actions_;
    r.observation = {{"user", "Invalid answer: " + parsed.error + "."}};
  } else {
    answer_ = *parsed.value;
    r.terminated = true;
    const bool correct =
        IsCorrect(*answer_, task_.expected, InfoOf(task_.calculator).score);
    r.reward = correct ? 1.0 : 0.0;
    r.observation = {
        {"user", "Answer recorded: " + FormatNumber(*answer_) + "."}};
  }
  r.truncated = !r.terminated && turns_ >= options_.max_turns;
  done_ = r.terminated || r.truncated;
  r.info = {{"turn", turns_},
            {"max_turns", options_.max_turns},
            {"invalid_actions", invalid_actions_}};
  if (done_) r.info = EpisodeEndInfo(r.reward > 0.0);
  return r;
}

StepResult MedCalcEnv::Truncate() {
  if (done_) {
    throw BadRequest("med_calc: truncate after the episode ended; reset first");
  }
  // No answer was given (it would have ended the episode).
  done_ = true;
  StepResult r;
  r.truncated = true;
  r.info = EpisodeEndInfo(false);
  return r;
}

json MedCalcEnv::EpisodeEndInfo(bool correct) const {
  json info = {{"turn", turns_},
               {"max_turns", options_.max_turns},
               {"invalid_actions", invalid_actions_},
               {"calculator", InfoOf(task_.calculator).name},
               {"expected", task_.expected},
               {"metrics", {{"correct", correct ? 1.0 : 0.0}, {"cost", 0.0}}}};
  // What the numeric component reads (params.answer_field); absent when no
  // number was given, which scores 0.
  if (answer_) info["answer"] = *answer_;
  return info;
}

CLINRL_REGISTER_ENV(med_calc, MedCalcEnv::Create);

}  // namespace clinrl::envs::med_calc
