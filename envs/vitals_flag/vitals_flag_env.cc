#include "envs/vitals_flag/vitals_flag_env.h"

#include <cctype>
#include <optional>
#include <random>

#include "core/error.h"
#include "envs/env_options.h"
#include "envs/env_registry.h"

namespace clinrl::envs {

namespace {

constexpr size_t kNumVitals = VitalsFlagEnv::kVitals.size();

// A value in [lo, hi]: `rng() % n` rather than a std distribution, whose
// output the standard leaves to the library, so that a task is the same
// patient on every platform.
int64_t Draw(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
}

// The displayed value of vital `v`, normal or abnormal (then high or low at
// random, except SpO2, which is only abnormal when low).
std::string VitalValue(size_t v, bool abnormal, std::mt19937_64& rng) {
  const bool high = Draw(rng, 0, 1) == 1;
  switch (v) {
    case 0:
      return fmt::format("{} bpm", !abnormal ? Draw(rng, 62, 96)
                                   : high    ? Draw(rng, 124, 150)
                                             : Draw(rng, 34, 44));
    case 1: {
      if (!abnormal) {
        return fmt::format("{}/{} mmHg", Draw(rng, 106, 134),
                           Draw(rng, 64, 84));
      }
      return high ? fmt::format("{}/{} mmHg", Draw(rng, 184, 212),
                                Draw(rng, 106, 122))
                  : fmt::format("{}/{} mmHg", Draw(rng, 72, 84),
                                Draw(rng, 38, 48));
    }
    case 2:
      return fmt::format("{} /min", !abnormal ? Draw(rng, 12, 18)
                                    : high    ? Draw(rng, 28, 36)
                                              : Draw(rng, 5, 7));
    case 3:
      return fmt::format("{} %",
                         !abnormal ? Draw(rng, 95, 100) : Draw(rng, 80, 88));
    default: {
      const int64_t tenths = !abnormal ? Draw(rng, 363, 374)
                             : high    ? Draw(rng, 388, 404)
                                       : Draw(rng, 335, 348);
      return fmt::format("{}.{} C", tenths / 10, tenths % 10);
    }
  }
}

// "Heart rate", "heart-rate", "HEART_RATE." -> "heart_rate".
std::string CanonicalName(const std::string& text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out.push_back(static_cast<char>(std::tolower(u)));
    } else if ((c == ' ' || c == '_' || c == '-') && !out.empty() &&
               out.back() != '_') {
      out.push_back('_');
    } else if (c != ' ' && c != '_' && c != '-' && c != '.') {
      return "";  // anything else is not a vital's name
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

// The index of the vital named `text`, or kNumVitals.
size_t VitalIndex(const std::string& text) {
  const std::string name = CanonicalName(text);
  for (size_t v = 0; v < kNumVitals; ++v) {
    if (name == VitalsFlagEnv::kVitals[v]) return v;
  }
  return kNumVitals;
}

std::string Trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// `action` starts with the verb (any case), then an optional ':'; returns
// the rest, trimmed, or nothing when the verb does not match.
std::optional<std::string> AfterVerb(const std::string& action,
                                     const std::string& verb) {
  if (action.size() <= verb.size()) return std::nullopt;
  for (size_t i = 0; i < verb.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(action[i])) != verb[i]) {
      return std::nullopt;
    }
  }
  const char next = action[verb.size()];
  if (next != ':' && next != ' ' && next != '\t') return std::nullopt;
  return Trim(action.substr(verb.size() + (next == ':' ? 1 : 0)));
}

}  // namespace

VitalsFlagEnv::VitalsFlagEnv(VitalsFlagOptions options) : options_(options) {}

std::unique_ptr<Env> VitalsFlagEnv::Create(const json& options,
                                           const std::string& path) {
  return std::make_unique<VitalsFlagEnv>(
      ReadOptions<VitalsFlagOptions>(options, path));
}

EnvSpec VitalsFlagEnv::Spec() const {
  EnvSpec s;
  s.name = "vitals_flag";
  s.version = "1.0";
  s.action_format =
      "One action per turn: 'CHECK <vital>' shows its value (costs 1); "
      "'ANSWER: <vital>' names the abnormal vital and ends the episode. "
      "Vitals: heart_rate, blood_pressure, resp_rate, spo2, temperature.";
  s.max_turns = options_.max_turns;
  s.splits = {{"train", 64}, {"validation", 16}, {"test", 32}};
  return s;
}

VitalsFlagEnv::Patient VitalsFlagEnv::PatientFor(const std::string& split,
                                                 int64_t index) {
  // Each split draws from its own stream, so test patients are not train's.
  const uint64_t salt = split == "train" ? 1 : split == "validation" ? 2 : 3;
  std::mt19937_64 rng(salt * 1000003u + static_cast<uint64_t>(index));
  Patient p;
  p.age = Draw(rng, 18, 90);
  p.abnormal = static_cast<size_t>(Draw(rng, 0, kNumVitals - 1));
  for (size_t v = 0; v < kNumVitals; ++v) {
    p.values[v] = VitalValue(v, v == p.abnormal, rng);
  }
  return p;
}

ResetResult VitalsFlagEnv::Reset(const ResetRequest& request) {
  ReadOptions<NoOptions>(request.options, "options");
  const EnvSpec spec = Spec();
  auto split = spec.splits.find(request.split);
  if (split == spec.splits.end()) {
    throw BadRequest(fmt::format(
        "reset.split: got '{}', expected one of: test, train, validation",
        request.split));
  }
  const int64_t count = split->second;
  const int64_t index = TaskIndexOf(request, count);
  patient_ = PatientFor(request.split, index);
  answer_.clear();
  turns_ = 0;
  cost_ = 0;
  invalid_actions_ = 0;
  done_ = false;
  ResetResult r;
  r.observation = {
      {"system", "You are a ward nurse reviewing a patient's vital signs. " +
                     spec.action_format},
      {"user", fmt::format("Patient {}-{}, {} years old. Exactly one vital "
                           "sign is abnormal. Which one?",
                           request.split, index, patient_.age)}};
  // The reward (docs/rewards.md): the named vital, read from the final
  // info's `answer` so that the reward and metrics.correct agree, and a
  // small charge for each CHECK.
  const std::string expected = kVitals[patient_.abnormal];
  r.info = {
      {"task_index", index},
      {"reward_spec",
       {{"components",
         json::array({{{"name", "flag"},
                       {"plugin", "exact_match"},
                       {"weight", 1.0},
                       {"params",
                        {{"expected", expected}, {"answer_field", "answer"}}}},
                      {{"name", "cost"},
                       {"plugin", "cost"},
                       {"weight", 0.1},
                       {"params", {{"budget", 5}}}}})},
        {"success", "flag"}}},
      {"invalid_actions", 0}};
  return r;
}

StepResult VitalsFlagEnv::Step(const std::string& action) {
  if (done_) {
    throw BadRequest("vitals_flag: step after the episode ended; reset first");
  }
  ++turns_;
  StepResult r;
  const std::string text = Trim(action);
  const auto checked = AfterVerb(text, "CHECK");
  const auto answered = AfterVerb(text, "ANSWER");
  const size_t vital = checked    ? VitalIndex(*checked)
                       : answered ? VitalIndex(*answered)
                                  : 0;
  if ((!checked && !answered) || vital == kNumVitals) {
    ++invalid_actions_;
    r.observation = {{"user", fmt::format("Invalid action '{}': expected "
                                          "'CHECK <vital>' or 'ANSWER: "
                                          "<vital>' with a vital among "
                                          "heart_rate, blood_pressure, "
                                          "resp_rate, spo2, temperature.",
                                          text.substr(0, 80))}};
  } else if (checked) {
    ++cost_;
    r.observation = {{"user", fmt::format("{}: {}", kVitals[vital],
                                          patient_.values[vital])}};
  } else {
    answer_ = kVitals[vital];
    r.terminated = true;
    r.reward = vital == patient_.abnormal ? 1.0 : 0.0;
    r.observation = {{"user", "Answer recorded: " + answer_ + "."}};
  }
  r.truncated = !r.terminated && turns_ >= options_.max_turns;
  done_ = r.terminated || r.truncated;
  r.info = {
      {"turn", turns_}, {"cost", cost_}, {"invalid_actions", invalid_actions_}};
  if (done_) r.info = EpisodeEndInfo(r.reward > 0.0);
  return r;
}

StepResult VitalsFlagEnv::Truncate() {
  if (done_) {
    throw BadRequest(
        "vitals_flag: truncate after the episode ended; reset first");
  }
  // No answer was given (it would have ended the episode): as when the turn
  // budget runs out.
  done_ = true;
  StepResult r;
  r.truncated = true;
  r.info = EpisodeEndInfo(false);
  return r;
}

json VitalsFlagEnv::EpisodeEndInfo(bool correct) const {
  json info = {{"turn", turns_},
               {"cost", cost_},
               {"invalid_actions", invalid_actions_},
               {"metrics",
                {{"correct", correct ? 1.0 : 0.0},
                 {"cost", static_cast<double>(cost_)}}}};
  // What the exact_match component reads (params.answer_field); absent when
  // the agent named nothing, which scores 0.
  if (!answer_.empty()) info["answer"] = answer_;
  return info;
}

CLINRL_REGISTER_ENV(vitals_flag, VitalsFlagEnv::Create);

}  // namespace clinrl::envs
