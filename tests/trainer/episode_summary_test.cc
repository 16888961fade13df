#include "trainer/episode_summary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace clinrl::trainer {
namespace {

Trajectory Episode(Termination termination, nlohmann::json info) {
  Trajectory t;
  t.termination = termination;
  t.info = std::move(info);
  t.turns = {{"user", "q", {}, {}}, {"assistant", "a", {1, 2}, {-1, -1}}};
  return t;
}

// An episode the rollout cut carries the env's truncation info (correct 0),
// so it counts towards accuracy like one the env ended itself.
TEST(EpisodeSummaryTest, CutEpisodesWithFinalInfoCountTowardsAccuracy) {
  const Trajectory right = Episode(
      Termination::kFinished, {{"metrics", {{"correct", 1}, {"cost", 40}}}});
  const Trajectory cut = Episode(Termination::kMaxTokens,
                                 {{"metrics", {{"correct", 0}, {"cost", 20}}}});
  const auto summary = SummarizeEpisodes({&right, &cut});
  ASSERT_EQ(summary.count("accuracy"), 1u);
  EXPECT_DOUBLE_EQ(summary.at("accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(summary.at("cost/mean"), 30.0);
  EXPECT_DOUBLE_EQ(summary.at("termination/max_tokens"), 0.5);
  EXPECT_DOUBLE_EQ(summary.at("flagged"), 0.0);
  EXPECT_EQ(FormatSummaryValue(summary, "accuracy", 3), "0.500");
}

// pass@k counts an episode correct by the same figure accuracy averages.
TEST(EpisodeSummaryTest, EpisodeCorrectReadsTheEnvsCorrectMetric) {
  EXPECT_EQ(EpisodeCorrect(Episode(Termination::kFinished,
                                   {{"metrics", {{"correct", 1}}}})),
            std::optional<bool>(true));
  EXPECT_EQ(EpisodeCorrect(Episode(Termination::kFinished,
                                   {{"metrics", {{"correct", 0.0}}}})),
            std::optional<bool>(false));
  EXPECT_EQ(EpisodeCorrect(
                Episode(Termination::kFinished, {{"metrics", {{"cost", 3}}}})),
            std::nullopt);
  EXPECT_EQ(EpisodeCorrect(Episode(Termination::kFinished, nullptr)),
            std::nullopt);
}

// With no `correct` metric (an env without one, or episodes that lack their
// final info) there is no accuracy, and a table cell shows "-", not "nan".
TEST(EpisodeSummaryTest, AMissingOrNonFiniteFigureIsADashNotNan) {
  const Trajectory no_metrics =
      Episode(Termination::kMaxTokens, {{"invalid_actions", 1}});
  const auto summary = SummarizeEpisodes({&no_metrics});
  EXPECT_EQ(summary.count("accuracy"), 0u);
  EXPECT_EQ(FormatSummaryValue(summary, "accuracy", 3), "-");
  EXPECT_EQ(FormatSummaryValue(summary, "turns/mean", 2), "1.00");
  const std::map<std::string, double> odd = {
      {"nan", std::nan("")},
      {"inf", std::numeric_limits<double>::infinity()},
      {"negative", -0.0125}};
  EXPECT_EQ(FormatSummaryValue(odd, "nan", 3), "-");
  EXPECT_EQ(FormatSummaryValue(odd, "inf", 1), "-");
  EXPECT_EQ(FormatSummaryValue(odd, "negative", 3), "-0.013");
}

// A reward component that failed is counted under `flagged`, the figure the
// run's metrics report.
TEST(EpisodeSummaryTest, FailedRewardComponentsAreCountedAsFlagged) {
  Trajectory t = Episode(Termination::kMaxTokens, {{"invalid_actions", 0}});
  t.reward.components["cost"] = {
      0.0, 0.1, {{"error", {{"code", "bad_request"}, {"message", "no cost"}}}}};
  t.reward.components["diagnosis"] = {1.0, 1.0, {{"answer", "I21.9"}}};
  EXPECT_DOUBLE_EQ(SummarizeEpisodes({&t}).at("flagged"), 1.0);
}

}  // namespace
}  // namespace clinrl::trainer
