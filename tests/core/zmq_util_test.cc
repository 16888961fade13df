#include "core/zmq_util.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace clinrl {
namespace {

TEST(ZmqUtilTest, LoopbackEndpointsAreTheOnesOnlyThisHostReaches) {
  for (const char* closed :
       {"tcp://127.0.0.1:5555", "tcp://127.0.0.1:0", "tcp://127.8.9.1:1",
        "tcp://localhost:5555", "tcp://[::1]:5555", "ipc:///tmp/x.sock",
        "inproc://name"}) {
    EXPECT_TRUE(IsLoopbackEndpoint(closed)) << closed;
  }
  for (const char* open :
       {"tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.0.0.2:5555",
        "tcp://node7:5555", "tcp://eth0:5555", "tcp://[::]:5555",
        "tcp://127.0.0.1;10.0.0.2:5555", "tcp://128.0.0.1:5555"}) {
    EXPECT_FALSE(IsLoopbackEndpoint(open)) << open;
  }
}

TEST(ZmqUtilTest, ANonLoopbackBindNeedsInsecureAndTheErrorSaysSo) {
  EXPECT_NO_THROW(
      RequireLoopbackUnlessInsecure("tcp://127.0.0.1:5555", false, "--x"));
  EXPECT_NO_THROW(RequireLoopbackUnlessInsecure("tcp://*:5555", true, "--x"));
  try {
    RequireLoopbackUnlessInsecure("tcp://*:5555", false, "--endpoint");
    ADD_FAILURE() << "tcp://* was allowed without --insecure";
  } catch (const BadRequest& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--endpoint: got 'tcp://*:5555'"), std::string::npos)
        << message;
    EXPECT_NE(message.find("--insecure"), std::string::npos) << message;
    EXPECT_NE(message.find("tcp://127.0.0.1:PORT"), std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace clinrl
