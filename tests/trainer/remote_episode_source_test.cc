// The learner's side of the work protocol against a scripted worker (a raw
// DEALER in the test): task groups out, results in, stale results played
// again, a silent worker's groups re-issued, bad messages answered with
// errors that name the field.
#include "trainer/remote_episode_source.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <zmq.hpp>

#include "core/zmq_util.h"
#include "distributed/weight_subscriber.h"
#include "policy/tokenizer.h"

namespace clinrl::trainer {
namespace {

using nlohmann::json;

struct Fixture {
  std::unique_ptr<policy::Tokenizer> tokenizer = policy::LoadTokenizer("byte");
  RemoteEpisodeSourceOptions options;
  std::unique_ptr<RemoteEpisodeSource> source;

  explicit Fixture(int64_t heartbeat_ms = 1000) {
    static std::atomic<int> n{0};
    const int id = n++;
    options.work_endpoint = "inproc://remote-source-work-" + std::to_string(id);
    options.weights_endpoint =
        "inproc://remote-source-weights-" + std::to_string(id);
    options.group_size = 2;
    options.max_policy_lag = 1;
    options.heartbeat_ms = heartbeat_ms;
    options.heartbeat_misses = 2;
    options.progress_timeout_ms = 20000;
    source = std::make_unique<RemoteEpisodeSource>(*tokenizer, options);
  }
};

class ScriptedWorker {
 public:
  ScriptedWorker(const std::string& endpoint, std::string name)
      : name_(std::move(name)),
        socket_(clinrl::SharedZmqContext(), zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 10000);
    socket_.connect(endpoint);
  }
  void SendRaw(const std::string& body) {
    socket_.send(zmq::buffer(body), zmq::send_flags::none);
  }
  void Send(json body) {
    body["worker"] = name_;
    SendRaw(body.dump());
  }
  json Receive() {
    zmq::message_t m;
    if (!socket_.recv(m)) return json();
    return json::parse(m.to_string());
  }
  json AskForWork() {
    Send({{"op", "work"}});
    return Receive();
  }

 private:
  std::string name_;
  zmq::socket_t socket_;
};

// An episode as a rollout worker reports it: a prompt and one sampled turn.
json Episode(const json& group, int k, int64_t version) {
  Trajectory t;
  t.episode_id = group["key"].get<std::string>() + "-" + std::to_string(k);
  t.group_id = group["key"];
  t.env = group["env"];
  t.split = group["split"];
  t.task_index = group["task_index"];
  t.policy_version = version;
  t.turns.push_back({"user", "say hi", {}, {}});
  t.turns.push_back({"assistant", "hi", {104, 105}, {-0.5f, -0.25f}});
  t.reward.total = k;
  return ToJson(t);
}

json Result(const json& assignment, int64_t version, int episodes = 2) {
  json list = json::array();
  for (int k = 0; k < episodes; ++k) {
    list.push_back(Episode(assignment["group"], k, version));
  }
  return {{"op", "result"},
          {"key", assignment["group"]["key"]},
          {"episodes", list},
          {"stats", {{"generated_tokens", 4}, {"generate_seconds", 0.5}}}};
}

std::vector<rollout::TaskRef> Tasks(int n) {
  std::vector<rollout::TaskRef> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back({"echo", "train", 10 + i, {}});
  return tasks;
}

TEST(RemoteEpisodeSourceTest, HandsOutGroupsAndCollectsScoredEpisodes) {
  Fixture f;
  auto played = std::async(std::launch::async,
                           [&] { return f.source->Play(Tasks(2), 77, 3); });
  ScriptedWorker w(f.source->work_endpoint(), "w0");
  std::map<int64_t, json> seen;
  for (int i = 0; i < 2; ++i) {
    const json a = w.AskForWork();
    ASSERT_TRUE(a.value("ok", false)) << a;
    EXPECT_EQ(a["min_version"], 2);  // learner version 3, max lag 1
    EXPECT_EQ(a["version"], 3);
    seen[a["group"]["task_index"].get<int64_t>()] = a;
    w.Send(Result(a, 3));
    EXPECT_EQ(w.Receive()["accepted"], true);
  }
  EXPECT_EQ(seen.size(), 2u);
  // Different groups sample with different seeds.
  EXPECT_NE(seen[10]["group"]["seed"], seen[11]["group"]["seed"]);
  const ScoredEpisodes out = played.get();
  ASSERT_EQ(out.episodes.size(), 4u);
  // Group g is episodes [2g, 2g + 2) in task order, whatever order the
  // results came in.
  EXPECT_EQ(out.episodes[0].trajectory.task_index, 10);
  EXPECT_EQ(out.episodes[3].trajectory.task_index, 11);
  // The learner rebuilds the training sequence from the sampled ids.
  EXPECT_EQ(out.episodes[1].tokens.policy_tokens(), 2);
  EXPECT_EQ(out.stats.generated_tokens, 8);
  EXPECT_EQ(out.metrics.at("remote/policy_lag_mean"), 0.0);
  EXPECT_EQ(out.metrics.at("remote/workers_alive"), 1.0);
}

TEST(RemoteEpisodeSourceTest,
     StaleGroupIsPlayedAgainAndLagWithinTheBoundIsKept) {
  Fixture f;
  auto played = std::async(std::launch::async,
                           [&] { return f.source->Play(Tasks(1), 1, 5); });
  ScriptedWorker w(f.source->work_endpoint(), "w0");
  const json a = w.AskForWork();
  // Version 3 is two behind the learner's 5: dropped, the group re-queued.
  w.Send(Result(a, 3));
  const json stale = w.Receive();
  EXPECT_EQ(stale["accepted"], false) << stale;
  EXPECT_EQ(stale["reason"], "stale");
  const json again = w.AskForWork();
  EXPECT_EQ(again["group"]["key"], a["group"]["key"]);
  EXPECT_EQ(again["group"]["seed"], a["group"]["seed"]);
  // One behind is within max_policy_lag: kept, tagged with its version.
  w.Send(Result(again, 4));
  EXPECT_EQ(w.Receive()["accepted"], true);
  const ScoredEpisodes out = played.get();
  EXPECT_EQ(out.episodes[0].trajectory.policy_version, 4);
  EXPECT_EQ(out.metrics.at("remote/policy_lag_mean"), 1.0);
  EXPECT_EQ(out.metrics.at("remote/groups_stale"), 1.0);
}

TEST(RemoteEpisodeSourceTest, SilentWorkersGroupsGoToAnotherWorker) {
  Fixture f(/*heartbeat_ms=*/50);
  auto played = std::async(std::launch::async,
                           [&] { return f.source->Play(Tasks(1), 1, 0); });
  ScriptedWorker dies(f.source->work_endpoint(), "dies");
  const json a = dies.AskForWork();
  ASSERT_TRUE(a.contains("group")) << a;
  // `dies` never sends another message; `lives` heartbeats (as a real
  // worker's heartbeat thread does) while it waits for work.
  std::atomic<bool> done{false};
  std::thread heartbeat([&] {
    ScriptedWorker beat(f.source->work_endpoint(), "lives");
    while (!done) {
      beat.Send({{"op", "heartbeat"}, {"role", "rollout"}});
      beat.Receive();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  ScriptedWorker lives(f.source->work_endpoint(), "lives");
  const json b = lives.AskForWork();
  ASSERT_TRUE(b.contains("group")) << b;
  EXPECT_EQ(b["group"]["key"], a["group"]["key"]);
  lives.Send(Result(b, 0));
  EXPECT_EQ(lives.Receive()["accepted"], true);
  // The lost worker's late result is not counted twice.
  dies.Send(Result(a, 0));
  EXPECT_EQ(dies.Receive()["accepted"], false);
  const ScoredEpisodes out = played.get();
  done = true;
  heartbeat.join();
  EXPECT_EQ(out.episodes.size(), 2u);
  const RemoteSourceCounters c = f.source->counters();
  EXPECT_EQ(c.workers_lost, 1);
  EXPECT_EQ(c.groups_reissued, 1);
}

TEST(RemoteEpisodeSourceTest, BadMessagesGetErrorsAndChangeNothing) {
  Fixture f;
  auto played = std::async(std::launch::async,
                           [&] { return f.source->Play(Tasks(1), 1, 0); });
  ScriptedWorker w(f.source->work_endpoint(), "w0");
  w.SendRaw("not json");
  json r = w.Receive();
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"]["code"], "bad_request");
  w.SendRaw(R"({"op":"work"})");
  EXPECT_NE(
      w.Receive()["error"]["message"].get<std::string>().find("request.worker"),
      std::string::npos);
  w.Send({{"op", "dance"}});
  EXPECT_NE(w.Receive()["error"]["message"].get<std::string>().find(
                "request.op: got 'dance'"),
            std::string::npos);
  const json a = w.AskForWork();
  // One episode where the group has two: refused, the group re-queued.
  w.Send(Result(a, 0, 1));
  r = w.Receive();
  EXPECT_NE(r["error"]["message"].get<std::string>().find(
                "request.episodes: got 1 episodes, expected group_size 2"),
            std::string::npos)
      << r;
  const json again = w.AskForWork();
  EXPECT_EQ(again["group"]["key"], a["group"]["key"]);
  json broken = Result(again, 0);
  broken["episodes"][1]["turns"] = "nope";
  w.Send(broken);
  r = w.Receive();
  EXPECT_EQ(r["ok"], false) << r;
  EXPECT_NE(r["error"]["message"].get<std::string>().find("turns"),
            std::string::npos)
      << r;
  // A result for a group nobody holds is ignored, not an error.
  json unknown = Result(again, 0);
  unknown["key"] = "9-9";
  w.Send(unknown);
  EXPECT_EQ(w.Receive()["accepted"], false);
  const json third = w.AskForWork();
  EXPECT_EQ(third["group"]["key"], a["group"]["key"]);
  w.Send(Result(third, 0));
  EXPECT_EQ(w.Receive()["accepted"], true);
  EXPECT_EQ(played.get().episodes.size(), 2u);
  EXPECT_EQ(f.source->counters().bad_messages, 5);
}

TEST(RemoteEpisodeSourceTest, PublishesEachVersionAndStopsWorkersAtTheEnd) {
  auto f = std::make_unique<Fixture>(/*heartbeat_ms=*/50);
  policy::Transformer model(policy::TransformerOptions(
      policy::ModelConfig::FromJson({{"vocab_size", 300},
                                     {"hidden_size", 8},
                                     {"intermediate_size", 16},
                                     {"num_hidden_layers", 1},
                                     {"num_attention_heads", 2},
                                     {"num_key_value_heads", 1}},
                                    "init")));
  distributed::WeightSubscriber sub(f->source->weights_endpoint());
  f->source->PolicyUpdated(model, 4);
  std::optional<distributed::WeightUpdate> u;
  for (int i = 0; i < 100 && !u; ++i) u = sub.Poll(100);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->version, 4);
  ScriptedWorker w(f->source->work_endpoint(), "w0");
  w.Send({{"op", "heartbeat"}, {"role", "rollout"}});
  EXPECT_EQ(w.Receive()["stop"], false);
  w.Send({{"op", "work"}});  // waits: no group queued
  auto closing = std::async(std::launch::async, [&] { f.reset(); });
  const json stop = w.Receive();
  EXPECT_EQ(stop["stop"], true) << stop;
  closing.get();
}

}  // namespace
}  // namespace clinrl::trainer
