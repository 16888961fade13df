// `clinrl keys generate` and the --curve-keys flag as an operator uses them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/cli/run_clinrl.h"

namespace {

namespace fs = std::filesystem;
using clinrl::testing::ExpectOneLineError;
using clinrl::testing::RunClinrl;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "clinrl-keys-cli-" +
                          std::to_string(getpid()) + "-" + name;
  fs::remove_all(dir);
  return dir;
}

TEST(KeysCommandTest, GenerateWritesAPrivateFolderOnceOnly) {
  const std::string dir = FreshDir("generate");
  const auto r = RunClinrl("keys generate " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all,
            fs::perms::owner_all);
  EXPECT_EQ(fs::status(dir + "/server.secret").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  ExpectOneLineError(RunClinrl("keys generate " + dir), dir);
  fs::remove_all(dir);
}

TEST(KeysCommandTest, MissingKeysAreRefusedNamingTheFlag) {
  const std::string dir = FreshDir("missing");
  ExpectOneLineError(RunClinrl("env serve --env echo --curve-keys " + dir),
                     "--curve-keys");
  ExpectOneLineError(RunClinrl("env eval --env echo --endpoint "
                               "tcp://127.0.0.1:1 --curve-keys " +
                               dir),
                     "--curve-keys");
}

TEST(KeysCommandTest, NonLoopbackRefusalNamesCurveKeysAsTheWayOut) {
  const auto r = RunClinrl("env serve --env echo --endpoint tcp://*:0");
  ExpectOneLineError(r, "--endpoint: got 'tcp://*:0'");
  EXPECT_NE(r.out.find("--curve-keys DIR"), std::string::npos) << r.out;
}

}  // namespace
