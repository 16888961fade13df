#include "envs/echo/echo_env.h"

#include <random>

#include "core/error.h"
#include "envs/env_options.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs {

namespace {

constexpr const char* kWords[] = {"fever",   "cough",    "rash",
                                  "syncope", "dyspnea",  "angina",
                                  "edema",   "jaundice", "vertigo"};
constexpr int64_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);
constexpr const char* kPromptPrefix = "Say the word: ";

bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

}  // namespace

EchoEnv::EchoEnv(EchoEnvOptions options) : options_(options) {}

std::unique_ptr<Env> EchoEnv::Create(const json& options,
                                     const std::string& path) {
  return std::make_unique<EchoEnv>(ReadOptions<EchoEnvOptions>(options, path));
}

EnvSpec EchoEnv::Spec() const {
  EnvSpec s;
  s.name = "echo";
  s.version = "1.0";
  s.action_format =
      "Reply with exactly the word you are asked for. Other text is echoed "
      "back; an empty reply is an invalid action.";
  s.max_turns = options_.max_turns;
  s.splits = {{"train", options_.train_tasks}, {"test", options_.test_tasks}};
  return s;
}

std::string EchoEnv::WordFor(const std::string& split, int64_t index) {
  // The test split shifts the words so a policy cannot memorise train.
  const int64_t shift = split == "test" ? 4 : 0;
  return std::string(kWords[(index + shift) % kNumWords]) + "-" +
         std::to_string(index);
}

ResetResult EchoEnv::Reset(const ResetRequest& request) {
  ReadOptions<NoOptions>(request.options, "options");
  int64_t count = 0;
  if (request.split == "train") {
    count = options_.train_tasks;
  } else if (request.split == "test") {
    count = options_.test_tasks;
  } else {
    throw BadRequest(fmt::format(
        "reset.split: got '{}', expected one of: train, test", request.split));
  }
  const int64_t index = TaskIndexOf(request, count);
  word_ = WordFor(request.split, index);
  turns_ = 0;
  invalid_actions_ = 0;
  done_ = false;
  ResetResult r;
  r.observation = {{"system", "You are a test agent. " + Spec().action_format},
                   {"user", kPromptPrefix + word_}};
  // The reward spec of rewards/reward.h: the last action must be the word.
  r.info = {
      {"task_index", index},
      {"reward_spec",
       {{"components", json::array({{{"name", "word"},
                                     {"plugin", "exact_match"},
                                     {"weight", 1.0},
                                     {"params", {{"expected", word_}}}}})},
        {"success", "word"}}},
      {"invalid_actions", 0}};
  return r;
}

StepResult EchoEnv::Step(const std::string& action) {
  StepResult r;
  if (done_) {
    throw BadRequest("echo: step after the episode ended; reset first");
  }
  ++turns_;
  bool correct = false;
  if (IsBlank(action)) {
    ++invalid_actions_;
    r.observation = {{"user",
                      "Invalid action: the reply is empty; expected "
                      "a word."}};
  } else if (action == word_) {
    correct = true;
    r.reward = 1.0;
    r.terminated = true;
    r.observation = {{"user", "Correct."}};
  } else {
    r.observation = {{"user", action}};
  }
  r.truncated = !r.terminated && turns_ >= options_.max_turns;
  done_ = r.terminated || r.truncated;
  r.info = {{"turn", turns_}, {"invalid_actions", invalid_actions_}};
  if (done_) {
    r.info["metrics"] = {{"correct", correct ? 1.0 : 0.0}, {"cost", 0.0}};
  }
  return r;
}

StepResult EchoEnv::Truncate() {
  if (done_) {
    throw BadRequest("echo: truncate after the episode ended; reset first");
  }
  // The word was not said (that would have ended the episode), as when the
  // turn budget runs out.
  done_ = true;
  StepResult r;
  r.truncated = true;
  r.info = {{"turn", turns_},
            {"invalid_actions", invalid_actions_},
            {"metrics", {{"correct", 0.0}, {"cost", 0.0}}}};
  return r;
}

CLINRL_REGISTER_ENV(echo, EchoEnv::Create);

namespace {

// Reads the word from the task prompt, as an agent would.
class EchoOraclePolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation& transcript, const json& info) override {
    for (const auto& m : transcript) {
      if (m.role == "user" && m.content.rfind(kPromptPrefix, 0) == 0) {
        return m.content.substr(std::char_traits<char>::length(kPromptPrefix));
      }
    }
    return "?";
  }
};

class EchoRandomPolicy : public ScriptedPolicy {
 public:
  explicit EchoRandomPolicy(uint64_t seed) : rng_(seed) {}
  std::string Act(const Observation& transcript, const json& info) override {
    const int64_t i = static_cast<int64_t>(rng_() % (kNumWords + 1));
    if (i == kNumWords) return "";
    return std::string(kWords[i]) + "-" + std::to_string(rng_() % 10);
  }

 private:
  std::mt19937_64 rng_;
};

}  // namespace

// Neither policy has options.
CLINRL_REGISTER_SCRIPTED_POLICY(echo, oracle,
                                [](uint64_t, const json& options,
                                   const std::string& path) {
                                  ReadOptions<NoOptions>(options, path);
                                  return std::make_unique<EchoOraclePolicy>();
                                });
CLINRL_REGISTER_SCRIPTED_POLICY(echo, random,
                                [](uint64_t seed, const json& options,
                                   const std::string& path) {
                                  ReadOptions<NoOptions>(options, path);
                                  return std::make_unique<EchoRandomPolicy>(
                                      seed);
                                });

}  // namespace clinrl::envs
