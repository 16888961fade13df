// The token sequence of one multi-turn episode, built the same way by the
// rollout worker (as it plays) and by the learner (from the trajectory), so
// the learner scores exactly the context the policy sampled from. Policy
// turns contribute their sampled ids and log-probs verbatim (never
// re-tokenised) and carry loss; everything else is chat-template text,
// encoded segment by segment, and is masked. The text is the model's own
// chat template (policy::ChatFormat: the tokenizer folder's template, else
// the built-in ChatML): Opening before the first policy turn, TurnClose
// after each, Continuation for the messages that follow. An env that
// declares tools (EnvSpec.tools) has them rendered into its episodes' first
// segment as the template renders tools; the trajectory's env name picks
// them, so the worker and the learner build the same sequence from the same
// table.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/trajectory.h"
#include "policy/chat_format.h"
#include "policy/tokenizer.h"

namespace clinrl::rollout {

struct EpisodeTokens {
  std::vector<int64_t> ids;
  std::vector<uint8_t> loss_mask;  // 1 on sampled policy tokens
  std::vector<float> logprobs;     // sampling-time log-probs, 0 elsewhere

  size_t size() const { return ids.size(); }
  int64_t policy_tokens() const;
};

// The role the policy speaks as; turns with this role and token ids are
// policy turns.
inline constexpr const char* kPolicyRole = "assistant";

class EpisodeTokenizer {
 public:
  // `env_tools`: each env's EnvSpec.tools, by env name (envs without tools
  // may be left out).
  explicit EpisodeTokenizer(
      const policy::Tokenizer& tokenizer,
      std::map<std::string, nlohmann::json> env_tools = {});

  // Records an env's tools (the rollout worker learns them from the env's
  // spec as it meets the env).
  void SetEnvTools(const std::string& env, nlohmann::json tools);
  bool KnowsEnv(const std::string& env) const {
    return env_tools_.count(env) > 0;
  }
  // The env's tools; an empty array for an env without (or not told).
  const nlohmann::json& ToolsOf(const std::string& env) const;

  // Appends env/system messages as chat-template text, followed by the
  // generation prompt for the next policy turn. The first segment of an
  // episode (empty `tokens`) carries the tools of `env`.
  void AppendMessages(const std::vector<Turn>& messages, EpisodeTokens* tokens,
                      const std::string& env = "") const;
  // Appends a policy turn's sampled ids; closes the turn with the template's
  // TurnClose (masked; its end-of-turn token left out when the sample ended
  // with it).
  void AppendPolicyTurn(const std::vector<int64_t>& token_ids,
                        const std::vector<float>& logprobs,
                        EpisodeTokens* tokens) const;
  // The whole episode from its record. Throws BadRequest when a policy turn
  // has no token ids (a record written without them cannot be trained on).
  EpisodeTokens FromTrajectory(const Trajectory& trajectory) const;

  // An SFT demonstration (scripted policy, no sampled ids): policy turns are
  // encoded from their text and, with their end-of-turn token, carry loss.
  EpisodeTokens FromDemonstration(const Trajectory& trajectory) const;

  const policy::Tokenizer& tokenizer() const { return tokenizer_; }
  const policy::ChatFormat& format() const { return *format_; }

 private:
  const policy::Tokenizer& tokenizer_;
  std::shared_ptr<const policy::ChatFormat> format_;
  int64_t end_of_turn_;
  std::vector<int64_t> turn_close_;  // TurnClose's ids
  std::map<std::string, nlohmann::json> env_tools_;
};

}  // namespace clinrl::rollout
