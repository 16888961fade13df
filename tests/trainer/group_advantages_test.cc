#include "trainer/group_advantages.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

namespace clinrl::trainer {
namespace {

TEST(GroupAdvantagesTest, HandComputedGrpo) {
  // Group 0: rewards 1, 0, 0, 1 -> mean 0.5, unbiased std sqrt(1/3).
  // Group 1: rewards 2, 4 -> mean 3, unbiased std sqrt(2).
  const std::vector<double> r = {1, 0, 2, 0, 4, 1};
  const std::vector<int64_t> g = {0, 0, 1, 0, 1, 0};
  const auto a = GroupAdvantages(r, g, AdvantageMode::kGrpo, 0.0);
  const double s0 = std::sqrt(1.0 / 3.0);
  EXPECT_NEAR(a[0], 0.5 / s0, 1e-12);
  EXPECT_NEAR(a[1], -0.5 / s0, 1e-12);
  EXPECT_NEAR(a[2], -1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(a[4], 1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(a[5], 0.5 / s0, 1e-12);
}

TEST(GroupAdvantagesTest, DrGrpoOnlyCentres) {
  const auto a =
      GroupAdvantages({1, 0, 0, 3}, {7, 7, 7, 7}, AdvantageMode::kDrGrpo);
  EXPECT_DOUBLE_EQ(a[0], 0.0);
  EXPECT_DOUBLE_EQ(a[1], -1.0);
  EXPECT_DOUBLE_EQ(a[3], 2.0);
}

TEST(GroupAdvantagesTest, EqualRewardsAndSingletonsGiveZero) {
  const auto a =
      GroupAdvantages({0.5, 0.5, 0.5, 9}, {1, 1, 1, 2}, AdvantageMode::kGrpo);
  for (double x : a) EXPECT_DOUBLE_EQ(x, 0.0);
}

TEST(GroupAdvantagesTest, RlooLeavesEachSampleOut) {
  // Group of 3: 3 - mean(0, 6) = 0; 0 - mean(3, 6) = -4.5; 6 - 1.5 = 4.5.
  const auto a =
      GroupAdvantages({3, 0, 6, 5}, {0, 0, 0, 1}, AdvantageMode::kRloo);
  EXPECT_DOUBLE_EQ(a[0], 0.0);
  EXPECT_DOUBLE_EQ(a[1], -4.5);
  EXPECT_DOUBLE_EQ(a[2], 4.5);
  EXPECT_DOUBLE_EQ(a[3], 0.0);  // alone in its group
}

TEST(GroupAdvantagesTest, BadModeAndSizesAreErrors) {
  EXPECT_THROW(ParseAdvantageMode("ppo"), ConfigError);
  EXPECT_THROW(GroupAdvantages({1, 2}, {0}, AdvantageMode::kGrpo),
               InternalError);
}

}  // namespace
}  // namespace clinrl::trainer
