#include "trainer/turn_credit.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace clinrl::trainer
