#include "rollout/episode_tokens.h"

#include <algorithm>

#include "core/error.h"

namespace clinrl::rollout {

int64_t EpisodeTokens::policy_tokens() const {
  int64_t n = 0;
  for (uint8_t m : loss_mask) n += m;
  return n;
}

EpisodeTokenizer::EpisodeTokenizer(
    const policy::Tokenizer& tokenizer,
    std::map<std::string, nlohmann::json> env_tools)
    : tokenizer_(tokenizer),
      format_(std::make_shared<const policy::ChatFormat>(tokenizer)),
      end_of_turn_(format_->EndOfTurnId()),
      turn_close_(tokenizer.Encode(format_->TurnClose())),
      env_tools_(std::move(env_tools)) {}

void EpisodeTokenizer::SetEnvTools(const std::string& env,
                                   nlohmann::json tools) {
  env_tools_[env] = std::move(tools);
}

const nlohmann::json& EpisodeTokenizer::ToolsOf(const std::string& env) const {
  static const nlohmann::json kNone = nlohmann::json::array();
  const auto it = env_tools_.find(env);
  return it == env_tools_.end() ? kNone : it->second;
}

void EpisodeTokenizer::AppendMessages(const std::vector<Turn>& messages,
                                      EpisodeTokens* tokens,
                                      const std::string& env) const {
  std::vector<policy::ChatMessage> chat;
  chat.reserve(messages.size());
  for (const Turn& t : messages) chat.push_back({t.role, t.content});
  const std::vector<int64_t> ids = tokenizer_.Encode(
      tokens->ids.empty() ? format_->Opening(chat, ToolsOf(env))
                          : format_->Continuation(chat, ToolsOf(env)));
  tokens->ids.insert(tokens->ids.end(), ids.begin(), ids.end());
  tokens->loss_mask.insert(tokens->loss_mask.end(), ids.size(), 0);
  tokens->logprobs.insert(tokens->logprobs.end(), ids.size(), 0.0f);
}

void EpisodeTokenizer::AppendPolicyTurn(const std::vector<int64_t>& token_ids,
                                        const std::vector<float>& logprobs,
                                        EpisodeTokens* tokens) const {
  if (token_ids.size() != logprobs.size()) {
    throw BadRequest(fmt::format("policy turn: {} token ids but {} log-probs",
                                 token_ids.size(), logprobs.size()));
  }
  tokens->ids.insert(tokens->ids.end(), token_ids.begin(), token_ids.end());
  tokens->loss_mask.insert(tokens->loss_mask.end(), token_ids.size(), 1);
  tokens->logprobs.insert(tokens->logprobs.end(), logprobs.begin(),
                          logprobs.end());
  // A sample that stopped on the end-of-turn token has TurnClose up to and
  // including it (all of it is "<|eot_id|>"; a template that closes with
  // text, " </s>", has the text before it too): only the rest follows.
  auto rest = turn_close_.begin();
  if (!token_ids.empty() && token_ids.back() == end_of_turn_) {
    const auto at =
        std::find(turn_close_.begin(), turn_close_.end(), end_of_turn_);
    if (at != turn_close_.end()) rest = at + 1;
  }
  const std::vector<int64_t> tail(rest, turn_close_.end());
  tokens->ids.insert(tokens->ids.end(), tail.begin(), tail.end());
  tokens->loss_mask.insert(tokens->loss_mask.end(), tail.size(), 0);
  tokens->logprobs.insert(tokens->logprobs.end(), tail.size(), 0.0f);
}

EpisodeTokens EpisodeTokenizer::FromTrajectory(
    const Trajectory& trajectory) const {
  EpisodeTokens tokens;
  std::vector<Turn> pending;
  for (size_t i = 0; i < trajectory.turns.size(); ++i) {
    const Turn& turn = trajectory.turns[i];
    if (turn.role != kPolicyRole) {
      pending.push_back(turn);
      continue;
    }
    if (turn.token_ids.empty() && !turn.content.empty()) {
      throw BadRequest(fmt::format(
          "trajectory {}: turns[{}] is a policy turn without token_ids; the "
          "learner trains only on sampled tokens",
          trajectory.episode_id, i));
    }
    AppendMessages(pending, &tokens, trajectory.env);
    pending.clear();
    AppendPolicyTurn(turn.token_ids, turn.logprobs, &tokens);
  }
  // Messages after the last policy turn (the env's final reply) are context
  // the policy never acted on; they are not part of the training sequence.
  return tokens;
}

EpisodeTokens EpisodeTokenizer::FromDemonstration(
    const Trajectory& trajectory) const {
  EpisodeTokens tokens;
  std::vector<Turn> pending;
  for (const Turn& turn : trajectory.turns) {
    if (turn.role != kPolicyRole) {
      pending.push_back(turn);
      continue;
    }
    AppendMessages(pending, &tokens, trajectory.env);
    pending.clear();
    std::vector<int64_t> ids = tokenizer_.Encode(turn.content);
    // The end-of-turn token is part of what the policy must learn to emit.
    ids.push_back(end_of_turn_);
    AppendPolicyTurn(ids, std::vector<float>(ids.size(), 0.0f), &tokens);
  }
  return tokens;
}

}  // namespace clinrl::rollout
