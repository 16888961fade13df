// `clinrl env serve` as an operator starts it: closed to the network unless
// told otherwise.
#include <gtest/gtest.h>

#include <string>

#include "tests/cli/run_clinrl.h"

namespace {

using clinrl::testing::ExpectOneLineError;
using clinrl::testing::RunClinrl;

TEST(EnvCommandTest, ServeRefusesANonLoopbackEndpointWithoutInsecure) {
  for (const char* endpoint : {"tcp://*:0", "tcp://0.0.0.0:0"}) {
    const auto r =
        RunClinrl(std::string("env serve --env echo --endpoint ") + endpoint);
    ExpectOneLineError(r, std::string("--endpoint: got '") + endpoint + "'");
    EXPECT_NE(r.out.find("--insecure"), std::string::npos) << r.out;
  }
}

TEST(EnvCommandTest, ServeBindsLoopbackByDefault) {
  const auto help = RunClinrl("env serve --help");
  EXPECT_EQ(help.exit_code, 0) << help.out;
  EXPECT_NE(help.out.find("tcp://127.0.0.1:5555"), std::string::npos)
      << help.out;
}

// Wrapper options are never silently ignored: a key that names no wrapper
// in --wrappers (a misspelling) is refused naming it and the wrappers.
TEST(EnvCommandTest, WrapperOptionsForNoWrapperAreRefused) {
  ExpectOneLineError(
      RunClinrl("env eval --env dx_dialogue --policy oracle --n 1 "
                "--wrappers distractor --wrapper-options "
                "'{\"distracter\": {\"seed\": 1}}'"),
      "--wrapper-options: key 'distracter' names no wrapper of --wrappers; "
      "expected one of: distractor");
  ExpectOneLineError(
      RunClinrl("env eval --env dx_dialogue --policy oracle --n 1 "
                "--wrapper-options '[1]'"),
      "--wrapper-options: got '[1]', expected a JSON object");
}

}  // namespace
