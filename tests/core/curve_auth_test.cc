// The ZAP handler of core/curve_auth.h, asked directly over its inproc
// endpoint as libzmq asks it: every request gets a reply, a malformed one a
// refusal, and the handler keeps answering (and a CURVE client keeps getting
// through) after one.
#include "core/curve_auth.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "core/curve_keys.h"
#include "core/zmq_util.h"
#include "tests/core/captured_log.h"

namespace clinrl {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr auto kReplyWait = std::chrono::seconds(5);

std::string KeyBytes(const std::string& z85) {
  std::string bytes(32, '\0');
  EXPECT_NE(
      zmq_z85_decode(reinterpret_cast<uint8_t*>(bytes.data()), z85.c_str()),
      nullptr)
      << z85;
  return bytes;
}

// A CURVE server socket on loopback (which starts the ZAP handler), and a
// DEALER on the handler's endpoint that sends requests as libzmq's sessions
// do (an empty delimiter, then the frames).
class CurveAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = GenerateCurveKeys();
    InstallCurveKeys(keys_);
    server_.set(zmq::sockopt::linger, 0);
    SecureServerSocket(server_, "tcp://127.0.0.1:0", "test server");
    server_.bind("tcp://127.0.0.1:*");
    domain_ = server_.get(zmq::sockopt::zap_domain);
    zap_.set(zmq::sockopt::linger, 0);
    zap_.connect(kZapEndpoint);
  }
  void TearDown() override {
    InstallCurveKeys(std::nullopt);
  }

  // The reply frames (without the delimiter), or none after kReplyWait.
  std::vector<std::string> Ask(const std::vector<std::string>& frames) {
    zap_.send(zmq::str_buffer(""), frames.empty() ? zmq::send_flags::none
                                                  : zmq::send_flags::sndmore);
    for (size_t i = 0; i < frames.size(); ++i) {
      zap_.send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                            ? zmq::send_flags::sndmore
                                            : zmq::send_flags::none);
    }
    const auto deadline = Clock::now() + kReplyWait;
    while (Clock::now() < deadline) {
      std::vector<zmq::pollitem_t> items = {{zap_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, std::chrono::milliseconds(50));
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> reply = ReceiveMultipart(zap_);
      std::vector<std::string> out;
      for (size_t i = 1; i < reply.size(); ++i) {
        out.push_back(reply[i].to_string());
      }
      return out;
    }
    return {};
  }

  std::vector<std::string> Curve(const std::string& id,
                                 const std::string& key) const {
    return {"1.0", id, domain_, "127.0.0.1", "", "CURVE", key};
  }

  // Whether a log line containing `text` was written.
  bool Logged(const std::string& text) const { return log_.Contains(text); }

  CurveKeys keys_;
  clinrl::testing::CapturedLog log_;
  zmq::socket_t server_{SharedZmqContext(), zmq::socket_type::rep};
  zmq::socket_t zap_{SharedZmqContext(), zmq::socket_type::dealer};
  std::string domain_;
};

TEST_F(CurveAuthTest, TheRunsClientKeyIsAcceptedAndAnotherRefused) {
  const std::vector<std::string> ok =
      Ask(Curve("1", KeyBytes(keys_.client_public)));
  ASSERT_EQ(ok.size(), 6u);
  EXPECT_EQ(ok[0], "1.0");
  EXPECT_EQ(ok[1], "1");
  EXPECT_EQ(ok[2], "200");
  const std::vector<std::string> refused =
      Ask(Curve("2", KeyBytes(GenerateCurveKeys().client_public)));
  ASSERT_EQ(refused.size(), 6u);
  EXPECT_EQ(refused[1], "2");
  EXPECT_EQ(refused[2], "400");
  EXPECT_TRUE(Logged("test server: refused a client at 127.0.0.1"));
}

TEST_F(CurveAuthTest, MalformedRequestsAreRefusedAndTheHandlerKeepsAnswering) {
  const std::string key = KeyBytes(keys_.client_public);
  struct Case {
    const char* what;
    std::vector<std::string> request;
    std::string id;  // the request id the reply carries
  };
  const std::vector<Case> cases = {
      {"the version only", {"1.0"}, ""},
      {"no domain and after", {"1.0", "11"}, "11"},
      {"no mechanism", {"1.0", "12", domain_, "127.0.0.1", ""}, "12"},
      {"another version",
       {"2.0", "13", domain_, "127.0.0.1", "", "CURVE", key},
       "13"},
      {"CURVE without a key",
       {"1.0", "14", domain_, "127.0.0.1", "", "CURVE"},
       "14"},
      {"a short key", Curve("15", "short"), "15"},
      {"an extra frame",
       {"1.0", "16", domain_, "127.0.0.1", "", "CURVE", key, "x"},
       "16"},
      {"an unknown mechanism",
       {"1.0", "17", domain_, "127.0.0.1", "", "MAGIC", key},
       "17"},
      {"PLAIN, which no server here uses",
       {"1.0", "18", domain_, "127.0.0.1", "", "PLAIN", "user", "password"},
       "18"},
      {"an unknown domain",
       {"1.0", "19", "no-such-domain", "127.0.0.1", "", "CURVE", key},
       "19"},
  };
  for (const Case& c : cases) {
    const auto start = Clock::now();
    const std::vector<std::string> reply = Ask(c.request);
    ASSERT_EQ(reply.size(), 6u) << c.what << ": no reply within 5 s";
    EXPECT_LT(Clock::now() - start, kReplyWait) << c.what;
    EXPECT_EQ(reply[0], "1.0") << c.what;
    EXPECT_EQ(reply[1], c.id) << c.what;
    EXPECT_EQ(reply[2], "400") << c.what;
    EXPECT_FALSE(reply[3].empty()) << c.what;
    // A good request right after is still answered, and accepted.
    const std::vector<std::string> ok = Ask(Curve("ok", key));
    ASSERT_EQ(ok.size(), 6u) << "after " << c.what;
    EXPECT_EQ(ok[1], "ok") << "after " << c.what;
    EXPECT_EQ(ok[2], "200") << "after " << c.what;
  }
  EXPECT_TRUE(Logged("refused a malformed ZAP request"));
  EXPECT_TRUE(Logged("a malformed CURVE ZAP request"));
  EXPECT_TRUE(Logged("MAGIC mechanism"));
}

// NULL-mechanism sockets (no CURVE) are not the handler's to judge.
TEST_F(CurveAuthTest, TheNullMechanismIsAccepted) {
  const std::vector<std::string> reply =
      Ask({"1.0", "n", "", "127.0.0.1", "", "NULL"});
  ASSERT_EQ(reply.size(), 6u);
  EXPECT_EQ(reply[1], "n");
  EXPECT_EQ(reply[2], "200");
}

// libzmq's own ZAP requests still get through after malformed ones: a CURVE
// client with the run's keys is served over loopback.
TEST_F(CurveAuthTest, ACurveClientIsServedAfterMalformedRequests) {
  ASSERT_EQ(Ask({"1.0"}).size(), 6u);
  ASSERT_EQ(Ask({"1.0", "x"}).size(), 6u);
  const std::string endpoint = server_.get(zmq::sockopt::last_endpoint);
  zmq::socket_t client(SharedZmqContext(), zmq::socket_type::req);
  client.set(zmq::sockopt::linger, 0);
  client.set(zmq::sockopt::rcvtimeo, 5000);
  SecureClientSocket(client, endpoint);
  client.connect(endpoint);
  client.send(zmq::str_buffer("ping"), zmq::send_flags::none);
  std::vector<zmq::pollitem_t> items = {{server_.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, std::chrono::milliseconds(5000));
  ASSERT_TRUE(items[0].revents & ZMQ_POLLIN)
      << "the CURVE handshake did not complete within 5 s";
  zmq::message_t request;
  ASSERT_TRUE(server_.recv(request, zmq::recv_flags::dontwait));
  EXPECT_EQ(request.to_string(), "ping");
  server_.send(zmq::str_buffer("pong"), zmq::send_flags::none);
  zmq::message_t reply;
  ASSERT_TRUE(client.recv(reply));
  EXPECT_EQ(reply.to_string(), "pong");
}

}  // namespace
}  // namespace clinrl
