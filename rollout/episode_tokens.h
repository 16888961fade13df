// The token sequence of one multi-turn episode, built the same way by the
// rollout worker (as it plays) and by the learner (from the trajectory), so
// the learner scores exactly the context the policy sampled from. Policy
// turns contribute their sampled ids and log-probs verbatim (never
// re-tokenised) and carry loss; everything else is chat-template text,
// encoded segment by segment, and is masked.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/trajectory.h"
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
  explicit EpisodeTokenizer(const policy::Tokenizer& tokenizer);

  // Appends env/system messages as chat-template text, followed by the
  // generation prompt for the next policy turn.
  void AppendMessages(const std::vector<Turn>& messages,
                      EpisodeTokens* tokens) const;
  // Appends a policy turn's sampled ids; closes the turn with end-of-turn
  // (masked, when the sample did not end with it) and the template's newline.
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

 private:
  const policy::Tokenizer& tokenizer_;
  int64_t end_of_turn_;
  std::vector<int64_t> turn_separator_;  // the "\n" after <|im_end|>
};

}  // namespace clinrl::rollout
