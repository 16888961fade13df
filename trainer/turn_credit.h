// Per-turn credit (trainer.credit: turn): each policy turn of an episode
// gets its own advantage, from the rewards that follow it, instead of one
// advantage for the whole episode. A turn's return is the sum of the env's
// step rewards from that turn on (returns-to-go, no discount), the episode's
// reward standing in for the last step's; its baseline is the same turn of
// the group's other episodes (a turn-level group baseline). Why that is
// unbiased, and what the modes change: docs/training.md, "Per-turn credit".
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/trajectory.h"
#include "rollout/episode_tokens.h"
#include "trainer/group_advantages.h"

namespace clinrl::trainer {

// The token span [first, second) of each policy turn of `trajectory` in its
// training sequence `tokens` (rollout::EpisodeTokenizer's layout: a turn's
// sampled ids are one run of trained positions). A turn without tokens gets
// an empty span. Throws InternalError when the two do not line up.
std::vector<std::pair<size_t, size_t>> PolicyTurnSpans(
    const Trajectory& trajectory, const rollout::EpisodeTokens& tokens);

// One reward per policy turn: the env's step reward after turn k
// (trajectory.step_rewards[k]; 0 where the episode ended before the env
// replied), except the last turn's, which is `episode_reward` (the reward
// service's total): the env's reward for the final step is its own terminal
// score, which the reward service scores again.
std::vector<double> TurnRewards(const Trajectory& trajectory,
                                int64_t policy_turns, double episode_reward);

// G_k = sum over j >= k of rewards[j].
std::vector<double> ReturnsToGo(const std::vector<double>& rewards);

// returns[i][k]: episode i's return from turn k. For each turn index k, the
// returns of the episodes of a group that reached turn k become advantages
// as trainer.advantage makes them from episode rewards (GroupAdvantages);
// an episode alone at its turn gets 0 there.
std::vector<std::vector<double>> TurnAdvantages(
    const std::vector<std::vector<double>>& returns,
    const std::vector<int64_t>& group_ids, AdvantageMode mode);

// Per position of a sequence of `length`: each turn's advantage on its
// span, 0 elsewhere (positions that carry no loss).
std::vector<float> TokenAdvantages(
    const std::vector<std::pair<size_t, size_t>>& spans,
    const std::vector<double>& turn_advantages, size_t length);

}  // namespace clinrl::trainer
