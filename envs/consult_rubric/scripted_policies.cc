// The baselines of consult_rubric for `clinrl env eval` and demonstrations.
// oracle: replies with the case's reference reply (info.reference_reply of
// the reset, which meets every positive criterion of the shipped cases and no
// negative one); a case without one gets a fixed placeholder reply, so the
// oracle is an upper bound only where rows carry references.
// random: two to four sentences drawn from a fixed pool of generic replies,
// some vaguely helpful ("see a doctor if you are worried"), none specific to
// a case: the floor a reply that ignores the patient reaches.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "envs/env_options.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::consult {
namespace {

constexpr const char* kNoReference =
    "I am sorry, I cannot give specific advice about this. Please speak to a "
    "health professional.";

class OraclePolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation&, const json& info) override {
    auto it = info.find("reference_reply");
    if (it == info.end() || !it->is_string()) return kNoReference;
    return it->get<std::string>();
  }
};

const std::vector<std::string>& GenericSentences() {
  static const std::vector<std::string> sentences = {
      "Thank you for your message.",
      "It is hard to say exactly what is going on from a description.",
      "Many symptoms like this settle by themselves over time.",
      "Try to rest and look after yourself.",
      "Drink plenty of fluids.",
      "See a doctor if you are worried.",
      "Keep a note of how things change over the next few days.",
      "Everyone's situation is a little different.",
      "Let me know if anything changes.",
      "I hope you feel better soon.",
      "A pharmacist can often give useful advice.",
      "Eating well and sleeping regularly help with most things."};
  return sentences;
}

class RandomPolicy : public ScriptedPolicy {
 public:
  explicit RandomPolicy(uint64_t seed) : rng_(seed ^ 0x636f6e73756c74ULL) {}

  std::string Act(const Observation&, const json&) override {
    const auto& pool = GenericSentences();
    // `rng() % n` rather than a std distribution, whose output the standard
    // leaves to the library: the same seed gives the same reply everywhere.
    const size_t count = 2 + rng_() % 3;
    std::string reply;
    for (size_t i = 0; i < count; ++i) {
      if (!reply.empty()) reply += " ";
      reply += pool[rng_() % pool.size()];
    }
    return reply;
  }

 private:
  std::mt19937_64 rng_;
};

}  // namespace
}  // namespace clinrl::envs::consult

CLINRL_REGISTER_SCRIPTED_POLICY(
    consult_rubric, oracle,
    [](uint64_t, const nlohmann::json& options, const std::string& path) {
      ::clinrl::envs::ReadOptions<::clinrl::envs::NoOptions>(options, path);
      return std::make_unique<::clinrl::envs::consult::OraclePolicy>();
    });

CLINRL_REGISTER_SCRIPTED_POLICY(
    consult_rubric, random,
    [](uint64_t seed, const nlohmann::json& options, const std::string& path) {
      ::clinrl::envs::ReadOptions<::clinrl::envs::NoOptions>(options, path);
      return std::make_unique<::clinrl::envs::consult::RandomPolicy>(seed);
    });
