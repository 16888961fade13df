#include "trainer/turn_credit.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace clinrl::trainer {

std::vector<std::pair<size_t, size_t>> PolicyTurnSpans(
    const Trajectory& trajectory, const rollout::EpisodeTokens& tokens) {
  std::vector<std::pair<size_t, size_t>> spans;
  size_t cursor = 0;
  for (const Turn& turn : trajectory.turns) {
    if (turn.role != rollout::kPolicyRole) continue;
    const size_t n = turn.token_ids.size();
    if (n == 0) {
      spans.emplace_back(cursor, cursor);
      continue;
    }
    while (cursor < tokens.loss_mask.size() && !tokens.loss_mask[cursor]) {
      ++cursor;
    }
    const size_t first = cursor;
    const bool fits =
        first + n <= tokens.ids.size() &&
        std::equal(turn.token_ids.begin(), turn.token_ids.end(),
                   tokens.ids.begin() + static_cast<std::ptrdiff_t>(first));
    CLINRL_CHECK(fits,
                 "episode {}: policy turn {} ({} tokens) does not match the "
                 "training sequence at position {}",
                 trajectory.episode_id, spans.size(), n, first);
    spans.emplace_back(first, first + n);
    cursor = first + n;
  }
  return spans;
}

std::vector<double> TurnRewards(const Trajectory& trajectory,
                                int64_t policy_turns, double episode_reward) {
  std::vector<double> rewards(
      static_cast<size_t>(std::max<int64_t>(0, policy_turns)), 0.0);
  if (rewards.empty()) return rewards;
  const size_t dense =
      std::min(rewards.size() - 1, trajectory.step_rewards.size());
  for (size_t k = 0; k < dense; ++k) rewards[k] = trajectory.step_rewards[k];
  rewards.back() = episode_reward;
  return rewards;
}

std::vector<double> ReturnsToGo(const std::vector<double>& rewards) {
  std::vector<double> g(rewards.size(), 0.0);
  double sum = 0;
  for (size_t k = rewards.size(); k-- > 0;) {
    sum += rewards[k];
    g[k] = sum;
  }
  return g;
}

std::vector<std::vector<double>> TurnAdvantages(
    const std::vector<std::vector<double>>& returns,
    const std::vector<int64_t>& group_ids, AdvantageMode mode) {
  CLINRL_CHECK(returns.size() == group_ids.size(),
               "{} episodes' returns but {} group ids", returns.size(),
               group_ids.size());
  std::vector<std::vector<double>> out(returns.size());
  size_t turns = 0;
  for (size_t i = 0; i < returns.size(); ++i) {
    out[i].assign(returns[i].size(), 0.0);
    turns = std::max(turns, returns[i].size());
  }
  for (size_t k = 0; k < turns; ++k) {
    std::vector<size_t> who;
    std::vector<double> values;
    std::vector<int64_t> groups;
    for (size_t i = 0; i < returns.size(); ++i) {
      if (k >= returns[i].size()) continue;
      who.push_back(i);
      values.push_back(returns[i][k]);
      groups.push_back(group_ids[i]);
    }
    const std::vector<double> a = GroupAdvantages(values, groups, mode);
    for (size_t j = 0; j < who.size(); ++j) out[who[j]][k] = a[j];
  }
  return out;
}

std::vector<float> TokenAdvantages(
    const std::vector<std::pair<size_t, size_t>>& spans,
    const std::vector<double>& turn_advantages, size_t length) {
  CLINRL_CHECK(spans.size() == turn_advantages.size(),
               "{} turn spans but {} turn advantages", spans.size(),
               turn_advantages.size());
  std::vector<float> out(length, 0.0f);
  for (size_t k = 0; k < spans.size(); ++k) {
    CLINRL_CHECK(spans[k].second <= length, "turn {} ends at {}, past {}", k,
                 spans[k].second, length);
    for (size_t p = spans[k].first; p < spans[k].second; ++p) {
      out[p] = static_cast<float>(turn_advantages[k]);
    }
  }
  return out;
}

}  // namespace clinrl::trainer
