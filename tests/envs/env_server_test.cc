#include "envs/env_server.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/zmq_util.h"
#include "envs/child_process.h"
#include "envs/env_client.h"
#include "tests/envs/test_envs.h"

namespace clinrl::envs {
namespace {

using Clock = std::chrono::steady_clock;

// When this binary is started with CLINRL_TEST_ENV_SERVER set, it is the
// server process of the restart test: it serves echo there until killed.
const bool kServeAsChild = [] {
  const char* endpoint = std::getenv("CLINRL_TEST_ENV_SERVER");
  if (endpoint == nullptr) return false;
  EnvServerOptions o;
  o.service.envs = {"echo"};
  o.service.registry = &testing::TestRegistry();
  o.endpoint = endpoint;
  EnvServer server(o);
  server.Start();
  while (true) pause();
}();

// Removes the test's socket folder when the test process exits.
struct FolderRemover {
  std::string path;
  ~FolderRemover() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

std::string TempDir() {
  static const FolderRemover dir_holder{[] {
    std::string templ =
        (std::filesystem::temp_directory_path() / "clinrl-env-test-XXXXXX")
            .string();
    CLINRL_CHECK_ERRNO(mkdtemp(templ.data()) != nullptr, "mkdtemp",
                       "making a temp dir");
    return templ;
  }()};
  return dir_holder.path;
}

EnvServerOptions ServerOn(const std::string& endpoint, int64_t workers = 2) {
  EnvServerOptions o;
  o.service.envs = {"echo", "misbehaving"};
  o.service.registry = &testing::TestRegistry();
  o.endpoint = endpoint;
  o.workers = workers;
  return o;
}

// 64 sessions play whole episodes at once; every reply must belong to the
// session and the action that asked for it.
void PlaySixtyFourSessions(const std::string& endpoint) {
  EnvServer server(ServerOn(endpoint));
  server.Start();
  EnvClient client({server.bound_endpoint(), 10000});
  constexpr int kSessions = 64;
  constexpr int kEpisodesEach = 3;
  ResetRequest req;
  std::map<uint64_t, int> reset_of;
  for (int i = 0; i < kSessions; ++i) {
    req.task_index = i;
    reset_of[client.SubmitReset("echo", req)] = i;
  }
  std::map<std::string, int> turns;  // session -> turn of the episode
  std::map<std::string, int> episodes;
  std::map<uint64_t, std::string> expected_echo;
  int64_t steps = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (client.in_flight() > 0 && Clock::now() < deadline) {
    for (EnvReply& r : client.Collect(1, 1000)) {
      ASSERT_TRUE(r.ok) << EnvOpName(r.op) << ": " << r.error_message;
      std::string session = r.session;
      if (r.op == EnvOp::kStep) {
        ++steps;
        ASSERT_EQ(r.observation.at(0).content, expected_echo[r.request_id]);
        expected_echo.erase(r.request_id);
        if (r.terminated || r.truncated) {
          if (++episodes[session] == kEpisodesEach) {
            client.SubmitClose(session);
            continue;
          }
          client.SubmitReset("echo", ResetRequest{}, session);
          turns[session] = 0;
          continue;
        }
      }
      if (r.op == EnvOp::kClose) continue;
      const std::string action =
          fmt::format("{}/{}/{}", session, episodes[session], turns[session]++);
      expected_echo[client.SubmitStep(session, action)] = action;
    }
  }
  EXPECT_EQ(client.in_flight(), 0u);
  EXPECT_EQ(episodes.size(), static_cast<size_t>(kSessions));
  // Echo truncates at 8 turns: each episode is 8 steps.
  EXPECT_EQ(steps, int64_t{kSessions} * kEpisodesEach * 8);
  EXPECT_EQ(client.Health()["sessions"], 0);
}

TEST(EnvServer, SixtyFourConcurrentSessionsOverIpc) {
  PlaySixtyFourSessions("ipc://" + TempDir() + "/sixty-four.sock");
}

TEST(EnvServer, SixtyFourConcurrentSessionsOverTcp) {
  PlaySixtyFourSessions("tcp://127.0.0.1:*");
}

TEST(EnvServer, SixtyFourConcurrentSessionsInproc) {
  PlaySixtyFourSessions(UniqueInprocEndpoint("server-test"));
}

TEST(EnvServer, MalformedFramesAndMessagesGetErrorRepliesAndServingGoesOn) {
  EnvServer server(ServerOn("ipc://" + TempDir() + "/malformed.sock"));
  server.Start();
  zmq::socket_t raw(SharedZmqContext(), zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 5000);
  raw.connect(server.bound_endpoint());
  auto reply_of = [&](std::vector<std::string> frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      raw.send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                           ? zmq::send_flags::sndmore
                                           : zmq::send_flags::none);
    }
    // The reply body is the last frame, after the delimiter if one was sent.
    const std::vector<zmq::message_t> got =
        ReceiveMultipart(raw, zmq::recv_flags::none);
    if (got.empty()) {
      ADD_FAILURE() << "no reply within rcvtimeo";
      return json();
    }
    return json::parse(got.back().to_string());
  };
  // No delimiter frame at all: answered as [identity][reply].
  json r = reply_of({"\x01\x02 binary garbage"});
  EXPECT_EQ(r["error"]["code"], "bad_request");
  r = reply_of({"", "{\"op\": "});
  EXPECT_EQ(r["error"]["code"], "bad_request");
  r = reply_of({"", "{\"op\": \"jump\"}"});
  EXPECT_NE(r["error"]["message"].get<std::string>().find("jump"),
            std::string::npos);
  r = reply_of(
      {"", "{\"op\": \"step\", \"session\": \"x\", \"action\": \"a\"}"});
  EXPECT_EQ(r["error"]["code"], "not_found");

  // A plain REQ client, as in docs/design.md, still gets served.
  zmq::socket_t req(SharedZmqContext(), zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.set(zmq::sockopt::rcvtimeo, 5000);
  req.connect(server.bound_endpoint());
  req.send(zmq::str_buffer(R"({"op":"spec","env":"echo"})"));
  zmq::message_t m;
  ASSERT_TRUE(req.recv(m));
  json spec = json::parse(m.to_string());
  EXPECT_EQ(spec["name"], "echo");
  EXPECT_EQ(spec["splits"]["train"], 1000);
}

TEST(EnvServer, EnvThatThrowsOverTheWireIsAnErrorNotACrash) {
  EnvServer server(ServerOn(UniqueInprocEndpoint("throws")));
  server.Start();
  EnvClient client({server.bound_endpoint(), 5000});
  const std::string s = client.Reset("misbehaving", {}, nullptr);
  try {
    client.Step(s, "boom");
    FAIL() << "expected an error reply";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("the env exploded"),
              std::string::npos);
  }
  EXPECT_EQ(client.Step(s, "fine").observation.at(0).content, "fine");
}

TEST(EnvServer, SlowEpisodeDoesNotStallTheOthers) {
  EnvServer server(ServerOn(UniqueInprocEndpoint("slow"), 2));
  server.Start();
  EnvClient client({server.bound_endpoint(), 5000});
  std::vector<std::string> sessions;
  for (int i = 0; i < 9; ++i) {
    sessions.push_back(client.Reset("misbehaving", {}, nullptr));
  }
  const auto start = Clock::now();
  const uint64_t slow = client.SubmitStep(sessions[0], "sleep:2000");
  // Let the slow step reach a worker before the fast ones queue up.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::set<uint64_t> fast;
  for (int i = 1; i < 9; ++i) fast.insert(client.SubmitStep(sessions[i], "x"));
  size_t fast_done = 0;
  while (fast_done < fast.size()) {
    for (const EnvReply& r : client.Collect(1, 2000)) {
      ASSERT_TRUE(r.ok) << r.error_message;
      ASSERT_NE(r.request_id, slow) << "the slow step came back first";
      fast_done += fast.count(r.request_id);
    }
  }
  // Well before the slow step's 2 s, even on a loaded machine.
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1200));
  EXPECT_TRUE(client.Wait(slow).ok);
}

TEST(EnvServer, AbandonedSessionsAreReclaimed) {
  EnvServerOptions o = ServerOn(UniqueInprocEndpoint("idle"));
  o.service.idle_timeout_s = 0.2;
  EnvServer server(o);
  server.Start();
  EnvClient client({server.bound_endpoint(), 5000});
  const std::string s = client.Reset("echo", {}, nullptr);
  EXPECT_EQ(client.Health()["sessions"], 1);
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (client.Health()["sessions"] != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(client.Health()["sessions"], 0);
  EXPECT_GE(client.Health()["reclaimed"], 1);
  client.SubmitStep(s, "x");
  auto replies = client.Collect(1, 5000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "not_found");
  EXPECT_TRUE(replies[0].session_lost);
}

// One greedy client cannot starve another: it gets an error reply once it
// holds its cap of sessions, or sends an oversized request, while a second
// client (another connection) still opens sessions and plays.
TEST(EnvServer, PerClientLimitsStopAGreedyClientNotTheOthers) {
  EnvServerOptions o = ServerOn("ipc://" + TempDir() + "/limits.sock");
  o.service.max_sessions_per_client = 3;
  o.service.max_request_bytes = 4096;
  EnvServer server(o);
  server.Start();
  EnvClient greedy({server.bound_endpoint(), 5000});
  EnvClient polite({server.bound_endpoint(), 5000});
  std::vector<std::string> held;
  for (int i = 0; i < 3; ++i) held.push_back(greedy.Reset("echo", {}, nullptr));
  try {
    greedy.Reset("echo", {}, nullptr);
    ADD_FAILURE() << "a fourth session was opened over the cap of 3";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "bad_request");
    EXPECT_NE(std::string(e.what()).find("max_sessions_per_client"),
              std::string::npos)
        << e.what();
  }
  const std::string session = polite.Reset("echo", {}, nullptr);
  greedy.SubmitStep(session, std::string(8192, 'x'));
  auto replies = greedy.Collect(1, 5000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "bad_request");
  EXPECT_NE(replies[0].error_message.find("limit of 4096 bytes"),
            std::string::npos)
      << replies[0].error_message;
  // The polite client plays on; a session the greedy one closes frees its
  // slot.
  polite.SubmitStep(session, "hello");
  replies = polite.Collect(1, 5000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].ok) << replies[0].error_message;
  EXPECT_EQ(server.handler().sessions(), 4);
  greedy.SubmitClose(held.back());
  ASSERT_EQ(greedy.Collect(1, 5000).size(), 1u);
  EXPECT_NO_THROW(greedy.Reset("echo", {}, nullptr));
}

// A client flooding the server with slow requests holds at most its limit
// of workers: the rest of its requests are answered at once with an error,
// and another client is served meanwhile.
TEST(EnvServer, InFlightLimitKeepsAWorkerForOtherClients) {
  EnvServerOptions o = ServerOn("ipc://" + TempDir() + "/inflight.sock", 3);
  o.max_in_flight_per_client = 1;
  EnvServer server(o);
  server.Start();
  EnvClient greedy({server.bound_endpoint(), 5000});
  EnvClient polite({server.bound_endpoint(), 5000});
  std::vector<std::string> sessions;
  for (int i = 0; i < 3; ++i) {
    sessions.push_back(greedy.Reset("misbehaving", {}, nullptr));
  }
  const std::string mine = polite.Reset("echo", {}, nullptr);
  const auto start = Clock::now();
  const uint64_t slow = greedy.SubmitStep(sessions[0], "sleep:1500");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const uint64_t second = greedy.SubmitStep(sessions[1], "sleep:1500");
  try {
    greedy.Wait(second);
    ADD_FAILURE() << "a second request ran beside the first";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("max_in_flight_per_client"),
              std::string::npos)
        << e.what();
  }
  polite.SubmitStep(mine, "hello");
  const auto replies = polite.Collect(1, 5000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].ok) << replies[0].error_message;
  // Both answers came while the slow step still ran.
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1200));
  EXPECT_TRUE(greedy.Wait(slow).ok);
}

TEST(EnvClient, NoServerMeansTimeoutNotAHang) {
  EnvClient client({"ipc://" + TempDir() + "/nobody.sock", 200});
  const auto start = Clock::now();
  client.SubmitStep("s-1", "x");
  auto replies = client.Collect(1, 5000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "timeout");
  EXPECT_TRUE(replies[0].session_lost);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_THROW(client.Health(), Timeout);
  EXPECT_THROW(EnvClient({"http://x", 100}), BadRequest);
}

std::unique_ptr<ChildProcess> StartChildServer(const std::string& endpoint) {
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{"/proc/self/exe"},
      std::map<std::string, std::string>{{"CLINRL_TEST_ENV_SERVER", endpoint}});
}

// Waits until the (re)started server answers health.
void AwaitServer(EnvClient& client) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    try {
      client.Health();
      return;
    } catch (const Timeout&) {
    } catch (const IoError&) {
      // The old server's connection dropped and the new one is not up yet:
      // refused at once, so wait a little before asking again.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  FAIL() << "server at " << client.endpoint() << " never answered";
}

TEST(EnvServer, KilledAndRestartedServerLosesSessionsNotTheClient) {
  const std::string endpoint = "ipc://" + TempDir() + "/restart.sock";
  auto child = StartChildServer(endpoint);
  const int64_t timeout_ms = 1000;
  EnvClient client({endpoint, timeout_ms});
  AwaitServer(client);
  std::vector<std::string> old_sessions;
  for (int i = 0; i < 16; ++i) {
    old_sessions.push_back(client.Reset("echo", {}, nullptr));
  }
  for (const auto& s : old_sessions) client.Step(s, "first");

  // Kill it mid-episode, with steps in flight: they fail when the
  // connection drops (or at once, sent after it dropped), not at the
  // request timeout. The server is stopped first so that none of them can
  // be answered before the kill (a fast server otherwise answers some).
  ASSERT_EQ(::kill(child->pid(), SIGSTOP), 0);
  for (const auto& s : old_sessions) client.SubmitStep(s, "second");
  child->Stop(SIGKILL);
  const auto killed = Clock::now();
  size_t lost = 0;
  while (client.in_flight() > 0) {
    for (const EnvReply& r : client.Collect(16, 2000)) {
      EXPECT_FALSE(r.ok);
      EXPECT_TRUE(r.session_lost);
      lost += r.session_lost;
    }
  }
  EXPECT_EQ(lost, old_sessions.size());
  EXPECT_LT(Clock::now() - killed, std::chrono::milliseconds(timeout_ms / 2));

  // A new server on the same endpoint: the client carries on with new
  // sessions and the old ones are reported lost, not hung on.
  child = StartChildServer(endpoint);
  AwaitServer(client);
  for (int i = 0; i < 16; ++i) {
    const std::string s = client.Reset("echo", {}, nullptr);
    EXPECT_EQ(client.Step(s, "after").observation.at(0).content, "after");
  }
  client.SubmitStep(old_sessions[0], "stale");
  auto replies = client.Collect(1, 2000);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error_code, "not_found");
  EXPECT_TRUE(replies[0].session_lost);
  child->Stop(SIGTERM);
}

}  // namespace
}  // namespace clinrl::envs
