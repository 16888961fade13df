#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli/run_clinrl.h"

namespace {

using clinrl::testing::CommandResult;
using clinrl::testing::ExpectOneLineError;
using clinrl::testing::RunClinrl;

const std::string kQuickstart =
    std::string(CLINRL_SOURCE_DIR) + "/configs/quickstart.json";

TEST(ConfigCommandTest, HelpListsSubcommands) {
  const auto r = RunClinrl("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Subcommands:"), std::string::npos);
  EXPECT_NE(r.out.find("config"), std::string::npos);
  EXPECT_NE(r.out.find("bench"), std::string::npos);
}

TEST(ConfigCommandTest, ShowPrintsResolvedJsonWithOverride) {
  const auto r =
      RunClinrl("config show " + kQuickstart + " --set trainer.lr=3e-6");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto resolved = nlohmann::json::parse(r.out);
  EXPECT_DOUBLE_EQ(resolved["trainer"]["lr"].template get<double>(), 3e-6);
  EXPECT_EQ(resolved["run"]["name"], "quickstart");
  EXPECT_EQ(resolved["trainer"]["loss_agg"], "seq_mean_token_mean");
}

TEST(ConfigCommandTest, MisspeltKey) {
  ExpectOneLineError(
      RunClinrl("config show " + kQuickstart + " --set trainer.lrr=1"),
      "trainer.lrr");
}

TEST(ConfigCommandTest, WrongType) {
  ExpectOneLineError(RunClinrl("config show " + kQuickstart +
                               " --set rollout.group_size=many"),
                     "rollout.group_size: expected integer");
}

TEST(ConfigCommandTest, BadEnumValue) {
  ExpectOneLineError(
      RunClinrl("config show " + kQuickstart +
                " --set trainer.kl_estimator=k9"),
      "trainer.kl_estimator: got 'k9', expected one of: k1, k2, k3");
}

TEST(ConfigCommandTest, BadLogLevel) {
  ExpectOneLineError(RunClinrl("--log-level loud config show " + kQuickstart),
                     "--log-level");
}

}  // namespace
