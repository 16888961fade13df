#include "trainer/metrics_logger.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

namespace clinrl::trainer {
namespace {

TEST(MetricsLoggerTest, WritesOneLinePerStepAndResumesAppending) {
  const std::string path = ::testing::TempDir() + "/metrics.jsonl";
  std::filesystem::remove(path);
  {
    MetricsLogger log(path);
    log.Log(1, "grpo", {{"reward/mean", 0.5}, {"kl", NAN}});
    log.LogEval(1, "validation", {{"accuracy", 0.25}});
  }
  {
    MetricsLogger resumed(path);
    resumed.Log(2, "grpo", {{"reward/mean", 0.75}});
  }
  std::vector<nlohmann::json> rows;
  ReadJsonl(path, [&](const nlohmann::json& v, int64_t) { rows.push_back(v); });
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["step"], 1);
  EXPECT_EQ(rows[0]["stage"], "grpo");
  EXPECT_TRUE(rows[0]["kl"].is_null());
  EXPECT_EQ(rows[1]["eval"], "validation");
  EXPECT_DOUBLE_EQ(rows[2]["reward/mean"].get<double>(), 0.75);
}

TEST(MetricsLoggerTest, ConsoleLineShowsKnownKeysInOrder) {
  const std::string line = MetricsLogger::ConsoleLine(12, "grpo",
                                                      {{"reward/mean", 0.41},
                                                       {"reward/std", 0.32},
                                                       {"kl", 0.003},
                                                       {"accuracy", 0.375},
                                                       {"something_else", 9}});
  EXPECT_EQ(line, "step    12 grpo | reward 0.410±0.320 acc 0.375 kl 0.0030");
}

}  // namespace
}  // namespace clinrl::trainer
