#include "trainer/turn_credit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "core/error.h"

namespace clinrl::trainer {
namespace {

Turn Policy(std::vector<int64_t> ids) {
  Turn t;
  t.role = rollout::kPolicyRole;
  t.content = "x";
  t.token_ids = ids;
  t.logprobs.assign(ids.size(), -1.0f);
  return t;
}

Turn Env(const std::string& text) {
  Turn t;
  t.role = "user";
  t.content = text;
  return t;
}

// Two policy turns in EpisodeTokenizer's layout: context, the sampled ids
// (trained), the masked end of turn and separator, context, ...
struct TwoTurns {
  Trajectory trajectory;
  rollout::EpisodeTokens tokens;
  TwoTurns() {
    trajectory.turns = {Env("case"), Policy({5, 6}), Env("answer"), Policy({7}),
                        Env("done")};
    tokens.ids = {1, 2, 5, 6, 99, 10, 3, 7, 99, 10};
    tokens.loss_mask = {0, 0, 1, 1, 0, 0, 0, 1, 0, 0};
    tokens.logprobs.assign(tokens.ids.size(), 0.0f);
  }
};

TEST(TurnCreditTest, PolicyTurnSpansFollowTheTokenLayout) {
  const TwoTurns e;
  const auto spans = PolicyTurnSpans(e.trajectory, e.tokens);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0], (std::pair<size_t, size_t>{2, 4}));
  EXPECT_EQ(spans[1], (std::pair<size_t, size_t>{7, 8}));
  const auto adv = TokenAdvantages(spans, {0.5, -2.0}, e.tokens.ids.size());
  EXPECT_EQ(adv, (std::vector<float>{0, 0, 0.5, 0.5, 0, 0, 0, -2.0, 0, 0}));
  TwoTurns bad;
  bad.tokens.ids[7] = 8;  // not the second turn's sampled id
  EXPECT_THROW(PolicyTurnSpans(bad.trajectory, bad.tokens), InternalError);
}

TEST(TurnCreditTest, TheEpisodeRewardStandsInForTheLastStep) {
  Trajectory t;
  t.step_rewards = {0.2, -0.1, 1.0};  // the last: the env's terminal score
  EXPECT_EQ(TurnRewards(t, 3, 0.7), (std::vector<double>{0.2, -0.1, 0.7}));
  // Cut before the env replied to the last turn.
  t.step_rewards = {0.2};
  EXPECT_EQ(TurnRewards(t, 3, 0.7), (std::vector<double>{0.2, 0.0, 0.7}));
  EXPECT_TRUE(TurnRewards(t, 0, 0.7).empty());
  EXPECT_EQ(ReturnsToGo({0.2, -0.1, 0.7}),
            (std::vector<double>{0.8, 0.6, 0.7}));
}

// The case only turn-level credit can tell apart: both episodes end with
// the same reward, one after an informative question (+0.3 from the env),
// the other after a redundant one (-0.1). Episode credit sees two equal
// rewards and gives both 0; turn credit rewards the informative question,
// penalises the redundant one and leaves the equal diagnoses at 0.
TEST(TurnCreditTest, OnlyTurnCreditSeparatesAGoodTurnFromABadOne) {
  Trajectory good, redundant;
  good.step_rewards = {0.3, 1.0};
  redundant.step_rewards = {-0.1, 1.0};
  const double reward = 1.0;
  const std::vector<int64_t> group = {0, 0};
  const auto episode =
      GroupAdvantages({reward, reward}, group, AdvantageMode::kDrGrpo);
  EXPECT_EQ(episode, (std::vector<double>{0.0, 0.0}));
  const auto turns =
      TurnAdvantages({ReturnsToGo(TurnRewards(good, 2, reward)),
                      ReturnsToGo(TurnRewards(redundant, 2, reward))},
                     group, AdvantageMode::kDrGrpo);
  EXPECT_NEAR(turns[0][0], 0.2, 1e-12);  // 1.3 - mean(1.3, 0.9)
  EXPECT_NEAR(turns[1][0], -0.2, 1e-12);
  EXPECT_NEAR(turns[0][1], 0.0, 1e-12);
  EXPECT_NEAR(turns[1][1], 0.0, 1e-12);
}

// The baseline of turn k is the group's episodes that reached turn k; an
// episode alone there has nothing to compare with and gets 0; groups do not
// mix.
TEST(TurnCreditTest, EachTurnIsComparedWithinItsGroupAtThatTurn) {
  const auto a = TurnAdvantages({{3.0, 1.0, 5.0}, {1.0, 2.0}, {2.0}, {9.0}},
                                {0, 0, 0, 1}, AdvantageMode::kRloo);
  // Turn 0 of group 0: returns 3, 1, 2; leave-one-out baselines 1.5, 2.5, 2.
  EXPECT_NEAR(a[0][0], 1.5, 1e-12);
  EXPECT_NEAR(a[1][0], -1.5, 1e-12);
  EXPECT_NEAR(a[2][0], 0.0, 1e-12);
  // Turn 1: episodes 0 and 1 only.
  EXPECT_NEAR(a[0][1], -1.0, 1e-12);
  EXPECT_NEAR(a[1][1], 1.0, 1e-12);
  EXPECT_EQ(a[0][2], 0.0);  // alone at turn 2
  EXPECT_EQ(a[3][0], 0.0);  // alone in group 1
}

// The dense-credit toy problem (issue: per-turn credit), a model of
// dx_dialogue: kQuestions question turns, each either informative (the env's
// step reward +0.1, and the diagnosis gets likelier) or redundant (-0.05);
// then a diagnosis turn, right (episode reward 1) with probability
// 0.2 + 0.15 per informative question. The policy is tabular (one softmax
// logit per question turn) and learns by the policy gradient of the GRPO
// loss for one token per turn, advantage x (onehot - p), on groups of
// episodes; the advantages come from the code under test. Episode credit
// sees only the diagnosis reward (what the reward service scores); turn
// credit also sees each question's own reward. Returns the step at which
// every question turn asks informatively with probability >= 0.95.
constexpr int kQuestions = 4;

int64_t StepsToOptimum(bool turn_credit, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::array<double, kQuestions> logit{};  // P(informative) = 0.5 at first
  const auto p_good = [&](int k) { return 1.0 / (1.0 + std::exp(-logit[k])); };
  constexpr int kGroups = 8, kGroupSize = 8;
  constexpr double kLr = 2.0;
  constexpr int64_t kMaxSteps = 2000;
  for (int64_t step = 1; step <= kMaxSteps; ++step) {
    std::vector<std::array<bool, kQuestions>> good;
    std::vector<double> rewards;
    std::vector<std::vector<double>> returns;
    std::vector<int64_t> groups;
    for (int g = 0; g < kGroups; ++g) {
      for (int i = 0; i < kGroupSize; ++i) {
        std::array<bool, kQuestions> asked{};
        Trajectory t;
        int informative = 0;
        for (int k = 0; k < kQuestions; ++k) {
          asked[k] = unit(rng) < p_good(k);
          informative += asked[k] ? 1 : 0;
          t.step_rewards.push_back(asked[k] ? 0.1 : -0.05);
        }
        const double reward = unit(rng) < 0.2 + 0.15 * informative ? 1.0 : 0.0;
        t.step_rewards.push_back(reward);
        good.push_back(asked);
        rewards.push_back(reward);
        returns.push_back(ReturnsToGo(TurnRewards(t, kQuestions + 1, reward)));
        groups.push_back(g);
      }
    }
    const auto episode =
        GroupAdvantages(rewards, groups, AdvantageMode::kDrGrpo);
    const auto turns = TurnAdvantages(returns, groups, AdvantageMode::kDrGrpo);
    std::array<double, kQuestions> grad{};
    for (size_t e = 0; e < good.size(); ++e) {
      for (int k = 0; k < kQuestions; ++k) {
        const double a = turn_credit ? turns[e][k] : episode[e];
        grad[k] += a * ((good[e][k] ? 1.0 : 0.0) - p_good(k));
      }
    }
    bool optimal = true;
    for (int k = 0; k < kQuestions; ++k) {
      logit[k] += kLr * grad[k] / static_cast<double>(good.size());
      optimal = optimal && p_good(k) >= 0.95;
    }
    if (optimal) return step;
  }
  return kMaxSteps + 1;
}

TEST(TurnCreditTest, TurnCreditReachesTheOptimumInFewerStepsOnTheToyProblem) {
  constexpr int kSeeds = 20;
  double episode_steps = 0, turn_steps = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    episode_steps += static_cast<double>(StepsToOptimum(false, seed));
    turn_steps += static_cast<double>(StepsToOptimum(true, seed));
  }
  episode_steps /= kSeeds;
  turn_steps /= kSeeds;
  std::printf(
      "dense-credit toy, mean steps to the optimum over %d seeds: episode "
      "credit %.1f, turn credit %.1f (ratio %.2f)\n",
      kSeeds, episode_steps, turn_steps, episode_steps / turn_steps);
  EXPECT_LT(episode_steps, 2000.0) << "episode credit never got there";
  EXPECT_LT(turn_steps * 1.5, episode_steps);
}

}  // namespace
}  // namespace clinrl::trainer
