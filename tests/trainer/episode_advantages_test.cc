#include "trainer/episode_advantages.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"

namespace clinrl::trainer {
namespace {

// A reward of weighted components; `flagged` marks the first component as
// failed, as the reward service does.
RewardResult Reward(const std::map<std::string, std::pair<double, double>>& c,
                    bool flagged = false) {
  RewardResult r;
  for (const auto& [name, score_weight] : c) {
    RewardComponent rc;
    rc.score = score_weight.first;
    rc.weight = score_weight.second;
    r.components[name] = rc;
    r.total += rc.score * rc.weight;
  }
  if (flagged) {
    r.components.begin()->second.details = {
        {"error", {{"code", "timeout"}, {"message", "did not finish"}}}};
  }
  return r;
}

std::vector<const RewardResult*> Pointers(const std::vector<RewardResult>& v) {
  std::vector<const RewardResult*> out;
  for (const auto& r : v) out.push_back(&r);
  return out;
}

// Unbiased-std z-scores of x (GRPO's advantage), by hand.
std::vector<double> ZScores(const std::vector<double>& x) {
  double mean = 0, sq = 0;
  for (double v : x) mean += v / x.size();
  for (double v : x) sq += (v - mean) * (v - mean);
  const double sd = std::sqrt(sq / (x.size() - 1));
  std::vector<double> z;
  for (double v : x) z.push_back((v - mean) / (sd + 1e-6));
  return z;
}

TEST(EpisodeAdvantagesTest, FlaggedRewardsAreLeftOutNotScoredZero) {
  // The flagged episode's total reads 0 (its component timed out); trained
  // on, it would be the group's worst.
  const std::vector<RewardResult> rewards = {
      Reward({{"dx", {0.0, 1.0}}}, /*flagged=*/true),
      Reward({{"dx", {1.0, 1.0}}}), Reward({{"dx", {0.5, 1.0}}}),
      Reward({{"dx", {1.0, 1.0}}})};
  EXPECT_TRUE(RewardFlagged(rewards[0]));
  EXPECT_FALSE(RewardFlagged(rewards[1]));
  const EpisodeAdvantages a =
      ComputeEpisodeAdvantages(Pointers(rewards), {0, 0, 0, 0}, {});
  EXPECT_EQ(a.flagged, 1);
  EXPECT_EQ(a.kept, (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(a.advantages[0], 0.0);
  const std::vector<double> z = ZScores({1.0, 0.5, 1.0});
  for (size_t k = 0; k < 3; ++k) EXPECT_NEAR(a.advantages[k + 1], z[k], 1e-12);
}

// Per-component normalisation: a group whose diagnoses all failed has only
// the cost term varying. On the total, GRPO's std normalisation blows that
// 0.05-weighted noise up to advantages of size ~1; per component it stays
// 0.05 x its z-score, while the diagnosis group keeps its full signal.
TEST(EpisodeAdvantagesTest, PerComponentKeepsASmallCostFromDominating) {
  const std::vector<double> cost = {-0.3, -0.1, -0.2, -0.4};
  const std::vector<double> dx = {0.0, 0.0, 1.0, 0.0};
  std::vector<RewardResult> rewards;
  for (int i = 0; i < 4; ++i) {  // group 0: no diagnosis right
    rewards.push_back(Reward({{"cost", {cost[i], 0.05}}, {"dx", {0.0, 1.0}}}));
  }
  for (int i = 0; i < 4; ++i) {  // group 1: one right
    rewards.push_back(
        Reward({{"cost", {cost[i], 0.05}}, {"dx", {dx[i], 1.0}}}));
  }
  const std::vector<int64_t> groups = {0, 0, 0, 0, 1, 1, 1, 1};
  const EpisodeAdvantages total =
      ComputeEpisodeAdvantages(Pointers(rewards), groups, {});
  EpisodeAdvantageOptions o;
  o.per_component = true;
  const EpisodeAdvantages split =
      ComputeEpisodeAdvantages(Pointers(rewards), groups, o);
  const std::vector<double> zc = ZScores(cost), zd = ZScores(dx);
  double total_max = 0;
  for (int i = 0; i < 4; ++i) {
    total_max = std::max(total_max, std::fabs(total.advantages[i]));
    EXPECT_NEAR(split.advantages[i], 0.05 * zc[i], 1e-9);
    EXPECT_NEAR(split.advantages[4 + i], 0.05 * zc[i] + zd[i], 1e-9);
  }
  EXPECT_GT(total_max, 1.0);
}

TEST(EpisodeAdvantagesTest, DynamicSamplingLeavesOutGroupsWithoutSignal) {
  std::vector<RewardResult> rewards;
  for (double r : {1.0, 1.0, 0.0, 1.0, 0.0, 0.0}) {
    rewards.push_back(Reward({{"dx", {r, 1.0}}}));
  }
  EpisodeAdvantageOptions o;
  o.dynamic_sampling = true;
  o.mode = AdvantageMode::kReinforcePlusPlus;
  const EpisodeAdvantages a =
      ComputeEpisodeAdvantages(Pointers(rewards), {0, 0, 1, 1, 2, 2}, o);
  EXPECT_EQ(a.kept, (std::vector<size_t>{2, 3}));
  EXPECT_EQ(a.informative_groups, (std::vector<int64_t>{1}));
  EXPECT_EQ(a.dropped_groups, 2);
  EXPECT_EQ(a.groups, 3);
  // REINFORCE++'s batch statistics are over the kept episodes only: the
  // two of group 1, centred -0.5 and +0.5, whitened to -1/sqrt(2), ....
  EXPECT_NEAR(a.advantages[2], -1.0 / std::sqrt(2.0), 1e-5);
  EXPECT_NEAR(a.advantages[3], 1.0 / std::sqrt(2.0), 1e-5);
  EXPECT_EQ(a.advantages[0], 0.0);
}

// The KL penalty varies in every group; it shapes the advantages but must
// not make a group without signal look informative.
TEST(EpisodeAdvantagesTest, APenaltyComponentIsNotSignal) {
  std::vector<RewardResult> rewards;
  const std::vector<double> dx = {1.0, 1.0, 0.0, 1.0};
  const std::vector<double> kl = {-0.2, -0.5, -0.1, -0.3};
  for (int i = 0; i < 4; ++i) {
    rewards.push_back(
        Reward({{"dx", {dx[i], 1.0}}, {"kl_penalty", {kl[i], 0.1}}}));
  }
  for (bool per_component : {false, true}) {
    EpisodeAdvantageOptions o;
    o.dynamic_sampling = true;
    o.per_component = per_component;
    o.mode = AdvantageMode::kDrGrpo;
    const std::vector<int64_t> groups = {0, 0, 1, 1};
    EpisodeAdvantages a =
        ComputeEpisodeAdvantages(Pointers(rewards), groups, o);
    EXPECT_EQ(a.kept.size(), 4u) << per_component;  // the KL alone is signal
    o.penalty_component = kKlPenaltyComponent;
    a = ComputeEpisodeAdvantages(Pointers(rewards), groups, o);
    EXPECT_EQ(a.kept, (std::vector<size_t>{2, 3})) << per_component;
    // Group 1's advantages still carry the penalty: Dr. GRPO centres the
    // total (or each component), so both give the same here.
    EXPECT_NEAR(a.advantages[2], -0.5 + 0.1 * (-0.1 + 0.2), 1e-12);
    EXPECT_NEAR(a.advantages[3], 0.5 + 0.1 * (-0.3 + 0.2), 1e-12);
  }
}

TEST(EpisodeAdvantagesTest, PerComponentNeedsTheSameComponents) {
  const std::vector<RewardResult> rewards = {Reward({{"dx", {1.0, 1.0}}}),
                                             Reward({{"cost", {0.0, 1.0}}})};
  EpisodeAdvantageOptions o;
  o.per_component = true;
  try {
    ComputeEpisodeAdvantages(Pointers(rewards), {0, 0}, o);
    FAIL() << "no error";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("episode 1"), std::string::npos);
  }
  EXPECT_THROW(ParseRewardNormalization("sum"), ConfigError);
  EXPECT_TRUE(ParseRewardNormalization("per_component"));
}

}  // namespace
}  // namespace clinrl::trainer
