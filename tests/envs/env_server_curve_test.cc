// The env server over tcp:// with CURVE (core/curve_auth.h): clients with the
// run's keys play, clients without them or with other keys get no session,
// the server logs each refusal and keeps serving, and the bytes on the wire
// do not show what was said.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "core/curve_auth.h"
#include "core/error.h"
#include "core/zmq_util.h"
#include "tests/core/captured_log.h"
#include "envs/env_client.h"
#include "envs/env_server.h"
#include "tests/envs/test_envs.h"

namespace clinrl::envs {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kMarker[] = "PLAINTEXT-MARKER-31337";

EnvServerOptions EchoOn(const std::string& endpoint) {
  EnvServerOptions o;
  o.service.envs = {"echo"};
  o.service.registry = &testing::TestRegistry();
  o.endpoint = endpoint;
  return o;
}

// Installs fresh keys for the test and removes them after it.
class EnvServerCurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = GenerateCurveKeys();
    InstallCurveKeys(keys_);
  }
  void TearDown() override { InstallCurveKeys(std::nullopt); }

  // Whether a log line containing `text` appears within 5 s.
  bool Logged(const std::string& text) {
    return log_.Contains(text, std::chrono::seconds(5));
  }

  CurveKeys keys_;
  clinrl::testing::CapturedLog log_;
};

// One reset and one step of the echo env; returns the step's observation.
std::string PlayOneStep(const std::string& endpoint,
                        const std::string& action) {
  EnvClient client({endpoint, 5000});
  ResetRequest request;
  request.split = "test";
  const std::string session = client.Reset("echo", request, nullptr);
  const StepResult step = client.Step(session, action);
  client.Close(session);
  return step.observation.empty() ? "" : step.observation.back().content;
}

// A raw DEALER whose request gets no reply within 500 ms.
bool RawClientGetsNoReply(const std::string& endpoint,
                          const std::function<void(zmq::socket_t&)>& setup) {
  zmq::socket_t raw(SharedZmqContext(), zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 500);
  setup(raw);
  raw.connect(endpoint);
  raw.send(zmq::message_t(), zmq::send_flags::sndmore);
  raw.send(zmq::str_buffer(R"({"op": "health"})"), zmq::send_flags::none);
  return ReceiveMultipart(raw, zmq::recv_flags::none).empty();
}

TEST_F(EnvServerCurveTest, ClientWithTheKeysPlaysAnEpisode) {
  EnvServer server(EchoOn("tcp://127.0.0.1:*"));
  server.Start();
  EXPECT_TRUE(UsesCurve(server.bound_endpoint()));
  EXPECT_NE(PlayOneStep(server.bound_endpoint(), "hello").find("hello"),
            std::string::npos);
}

TEST_F(EnvServerCurveTest, ClientWithoutKeysIsRefusedLoggedAndOthersServed) {
  EnvServer server(EchoOn("tcp://127.0.0.1:*"));
  server.Start();
  const std::string endpoint = server.bound_endpoint();
  EXPECT_TRUE(RawClientGetsNoReply(endpoint, [](zmq::socket_t&) {}));
  EXPECT_TRUE(Logged("refused a client")) << "no refusal in the server log";
  // The client's own error names the endpoint and CURVE.
  InstallCurveKeys(std::nullopt);
  try {
    PlayOneStep(endpoint, "hello");
    ADD_FAILURE() << "a client without keys was served";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(endpoint), std::string::npos) << m;
    EXPECT_NE(m.find("CURVE"), std::string::npos) << m;
  }
  InstallCurveKeys(keys_);
  EXPECT_NE(PlayOneStep(endpoint, "still").find("still"), std::string::npos);
}

TEST_F(EnvServerCurveTest, ClientWithAnotherKeyPairIsRefusedAndLogged) {
  EnvServer server(EchoOn("tcp://127.0.0.1:*"));
  server.Start();
  const CurveKeys other = GenerateCurveKeys();
  // Knows the server's public key, but its own pair is not the run's.
  EXPECT_TRUE(
      RawClientGetsNoReply(server.bound_endpoint(), [&](zmq::socket_t& s) {
        s.set(zmq::sockopt::curve_serverkey, keys_.server_public);
        s.set(zmq::sockopt::curve_publickey, other.client_public);
        s.set(zmq::sockopt::curve_secretkey, other.client_secret);
      }));
  EXPECT_TRUE(Logged(other.client_public + " is not this run's client key"));
  // A whole other key folder: the server's public key does not match.
  EXPECT_TRUE(
      RawClientGetsNoReply(server.bound_endpoint(), [&](zmq::socket_t& s) {
        s.set(zmq::sockopt::curve_serverkey, other.server_public);
        s.set(zmq::sockopt::curve_publickey, other.client_public);
        s.set(zmq::sockopt::curve_secretkey, other.client_secret);
      }));
  EXPECT_TRUE(Logged("did not decrypt"));
  EXPECT_NE(PlayOneStep(server.bound_endpoint(), "ok").find("ok"),
            std::string::npos);
}

// A TCP relay on loopback that keeps every byte it passes on.
class Relay {
 public:
  explicit Relay(int target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    CLINRL_CHECK_ERRNO(listener_ >= 0, "socket", "relay");
    sockaddr_in a = Loopback(0);
    CLINRL_CHECK_ERRNO(
        ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0,
        "bind", "relay");
    CLINRL_CHECK_ERRNO(::listen(listener_, 4) == 0, "listen", "relay");
    socklen_t n = sizeof(a);
    CLINRL_CHECK_ERRNO(
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &n) == 0,
        "getsockname", "relay");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  std::string endpoint() const {
    return "tcp://127.0.0.1:" + std::to_string(port_);
  }
  std::string seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }
  // One connection at a time, bytes copied both ways until either side
  // closes or the relay stops.
  void Run() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int client = ::accept(listener_, nullptr, nullptr);
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a = Loopback(target_port_);
      if (client < 0 || server < 0 ||
          ::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        if (client >= 0) ::close(client);
        if (server >= 0) ::close(server);
        continue;
      }
      Pump(client, server);
      ::close(client);
      ::close(server);
    }
  }
  void Pump(int a, int b) {
    char buf[65536];
    while (!stop_) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
        const ssize_t n = ::read(p[i].fd, buf, sizeof(buf));
        if (n <= 0) return;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          seen_.append(buf, static_cast<size_t>(n));
        }
        if (::write(p[1 - i].fd, buf, static_cast<size_t>(n)) != n) return;
      }
    }
  }

  int target_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::string seen_;
};

int PortOf(const std::string& endpoint) {
  return std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
}

TEST_F(EnvServerCurveTest, TheWireShowsNoPlaintext) {
  EnvServer server(EchoOn("tcp://127.0.0.1:*"));
  server.Start();
  Relay relay(PortOf(server.bound_endpoint()));
  EXPECT_NE(PlayOneStep(relay.endpoint(), kMarker).find(kMarker),
            std::string::npos);
  EXPECT_GT(relay.seen().size(), 100u);
  EXPECT_EQ(relay.seen().find(kMarker), std::string::npos);
  EXPECT_EQ(relay.seen().find("\"op\""), std::string::npos);
}

// The check above can fail: without CURVE the marker is on the wire.
TEST_F(EnvServerCurveTest, WithoutKeysTheWireShowsTheMarker) {
  InstallCurveKeys(std::nullopt);
  EnvServer server(EchoOn("tcp://127.0.0.1:*"));
  server.Start();
  Relay relay(PortOf(server.bound_endpoint()));
  PlayOneStep(relay.endpoint(), kMarker);
  EXPECT_NE(relay.seen().find(kMarker), std::string::npos);
}

}  // namespace
}  // namespace clinrl::envs
