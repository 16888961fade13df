#include "envs/dx_dialogue/random_policy.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/wire.h"
#include "envs/dx_dialogue/clinical_case.h"
#include "envs/dx_dialogue/dx_tools.h"
#include "envs/env_options.h"

namespace clinrl::envs::dx {

namespace {

double Uniform(std::mt19937_64& rng) { return UnitInterval(rng()); }

size_t Below(std::mt19937_64& rng, size_t n) {
  return static_cast<size_t>(Uniform(rng) * static_cast<double>(n));
}

int64_t InfoInt(const json& info, const char* key) {
  return wire::Fields(info, "info").Int(key);
}

}  // namespace

RandomPolicy::RandomPolicy(uint64_t seed,
                           std::shared_ptr<const KnowledgeBase> kb)
    : kb_(std::move(kb)), rng_(MixSeed(seed ^ 0x7261ULL)) {}

std::string RandomPolicy::RandomDiagnosis() {
  const size_t n = kb_->conditions.size();
  if (max_differential_ <= 0) {
    return "DIAGNOSIS: " + kb_->conditions[Below(rng_, n)].name;
  }
  // A partial Fisher-Yates shuffle: `length` distinct conditions.
  const size_t length =
      1 + Below(rng_, static_cast<size_t>(std::min<int64_t>(
                          max_differential_, static_cast<int64_t>(n))));
  std::vector<size_t> order(n);
  for (size_t c = 0; c < n; ++c) order[c] = c;
  std::string line = "DIAGNOSIS:";
  for (size_t i = 0; i < length; ++i) {
    std::swap(order[i], order[i + Below(rng_, n - i)]);
    line += fmt::format("{} {}. {}", i ? ";" : "", i + 1,
                        kb_->conditions[order[i]].name);
  }
  return line;
}

std::string RandomPolicy::Act(const Observation& transcript, const json& info) {
  // The reset info says whether the episode takes a ranked list or tool
  // calls.
  if (info.value("diagnosis_format", "") == "ranked") {
    max_differential_ = InfoInt(info, "max_differential");
  }
  if (info.value("action_mode", "") == "tools") tools_ = true;
  return ScriptedActionFor(TextAction(info), tools_, max_differential_ > 0);
}

std::string RandomPolicy::TextAction(const json& info) {
  const int64_t turn = InfoInt(info, "turn");
  const int64_t max_turns = InfoInt(info, "max_turns");
  const double u = Uniform(rng_);
  if (turn + 1 >= max_turns || u >= 0.85) return RandomDiagnosis();
  if (u < 0.35) {
    const auto askable = kb_->AskableFindings();
    return "ASK: " + kb_->findings[askable[Below(rng_, askable.size())]].name;
  }
  if (u < 0.5) {
    return "EXAM: " + kb_->systems[Below(rng_, kb_->systems.size())].name;
  }
  if (u < 0.7)
    return "TEST: " + kb_->tests[Below(rng_, kb_->tests.size())].name;
  static const char* kDispositions[] = {"home", "clinic", "emergency"};
  return std::string("DISPOSITION: ") + kDispositions[Below(rng_, 3)];
}

}  // namespace clinrl::envs::dx

CLINRL_REGISTER_SCRIPTED_POLICY(
    dx_dialogue, random,
    [](uint64_t seed, const nlohmann::json& options, const std::string& path) {
      const auto o =
          ::clinrl::envs::ReadOptions<::clinrl::envs::dx::RandomPolicyOptions>(
              options, path);
      return std::make_unique<::clinrl::envs::dx::RandomPolicy>(
          seed, ::clinrl::envs::dx::KnowledgeBase::Shared(o.knowledge_base));
    });
