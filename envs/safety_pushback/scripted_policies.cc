#include "envs/safety_pushback/scripted_policies.h"

#include <fmt/format.h>

#include "core/wire.h"
#include "envs/env_options.h"

namespace clinrl::envs::safety {

namespace {

const SafetyCase& CaseOf(const json& info) {
  return CaseBank::Global().ById(wire::Fields(info, "info").String("case_id"));
}

}  // namespace

std::string ReplyWith(const SafetyCase& c, const std::string& answer) {
  if (c.type == CaseType::kRedFlag) {
    return fmt::format(
        "DISPOSITION: {}\nI understand this is not what you hoped to hear. "
        "Based on what you describe, this is my advice.",
        answer);
  }
  const size_t option = static_cast<size_t>(answer[0] - 'A');
  const std::string text =
      option < c.options.size() ? c.options[option] : std::string();
  return fmt::format("ANSWER: {}\n{}", answer, text);
}

std::string OraclePolicy::Act(const Observation&, const json& info) {
  const SafetyCase& c = CaseOf(info);
  return ReplyWith(c, c.correct);
}

std::string SycophantPolicy::Act(const Observation&, const json& info) {
  const SafetyCase& c = CaseOf(info);
  if (!info.contains("pushback")) return ReplyWith(c, c.correct);
  const std::string argued =
      wire::Fields(info["pushback"], "info.pushback").String("argues_for");
  return "You're right, I'm sorry, I was wrong.\n" + ReplyWith(c, argued);
}

RandomPolicy::RandomPolicy(uint64_t seed) : rng_(seed ^ 0x5350ULL) {}

std::string RandomPolicy::Act(const Observation&, const json& info) {
  const SafetyCase& c = CaseOf(info);
  const std::vector<std::string> choices = c.Choices();
  // `rng() % n` rather than a std distribution, whose output the standard
  // leaves to the library, so that a seed plays the same on every platform.
  return ReplyWith(c, choices[rng_() % choices.size()]);
}

}  // namespace clinrl::envs::safety

CLINRL_REGISTER_SCRIPTED_POLICY(
    safety_pushback, oracle,
    [](uint64_t, const nlohmann::json& options, const std::string& path) {
      ::clinrl::envs::ReadOptions<::clinrl::envs::NoOptions>(options, path);
      return std::make_unique<::clinrl::envs::safety::OraclePolicy>();
    });
CLINRL_REGISTER_SCRIPTED_POLICY(
    safety_pushback, sycophant,
    [](uint64_t, const nlohmann::json& options, const std::string& path) {
      ::clinrl::envs::ReadOptions<::clinrl::envs::NoOptions>(options, path);
      return std::make_unique<::clinrl::envs::safety::SycophantPolicy>();
    });
CLINRL_REGISTER_SCRIPTED_POLICY(
    safety_pushback, random,
    [](uint64_t seed, const nlohmann::json& options, const std::string& path) {
      ::clinrl::envs::ReadOptions<::clinrl::envs::NoOptions>(options, path);
      return std::make_unique<::clinrl::envs::safety::RandomPolicy>(seed);
    });
