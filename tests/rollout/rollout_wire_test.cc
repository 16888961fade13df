// The rollout work protocol's messages survive the wire (JSON text and back)
// with every field, and a malformed message is refused naming the field.
// The heartbeat's message is in distributed/heartbeat.h (the layering rule
// keeps it below rollout/) but belongs to this protocol, so it is tested
// here with the others.
#include "rollout/rollout_wire.h"

#include <gtest/gtest.h>

#include <limits>

#include "core/error.h"
#include "core/wire.h"
#include "distributed/heartbeat.h"

namespace clinrl::rollout {
namespace {

using nlohmann::json;

// What the other process reads: the message as text, parsed again.
json OverTheWire(const json& message) { return json::parse(message.dump()); }

// The message of a call that must throw BadRequest.
template <class F>
std::string BadRequestMessage(F&& call) {
  try {
    call();
  } catch (const BadRequest& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected BadRequest";
  return "";
}

Trajectory Episode(int k) {
  Trajectory t;
  t.episode_id = "3-0-" + std::to_string(k);
  t.group_id = "3-0";
  t.env = "dx_dialogue";
  t.split = "train";
  t.task_index = 17;
  t.seed = 99 + k;
  t.policy_version = 4;
  t.turns.push_back({"user", "I feel dizzy.", {}, {}});
  t.turns.push_back(
      {"assistant", "ASK: fever", {65, 83, 75}, {-0.5f, -1.25f, -2.0f}});
  t.step_rewards = {0.0, 0.5};
  t.reward.total = 0.75;
  t.reward.components["dx"] = {1.0, 0.75, json{{"matched", "R42"}}};
  t.termination = Termination::kMaxTokens;
  t.timings["env"] = 0.125;
  t.reward_spec = {{"components", json::array({{{"name", "dx"}}})}};
  t.info = {{"invalid_actions", 1}};
  return t;
}

// Every field different from its default and from the others, so a field
// that one side forgets reads back wrong.
RolloutStats SomeStats() {
  RolloutStats s;
  s.seconds = 1.5;
  s.generate_seconds = 0.75;
  s.env_seconds = 0.25;
  s.generated_tokens = 101;
  s.prompt_tokens = 202;
  s.cached_prompt_tokens = 150;
  s.rounds = 7;
  s.episodes = 8;
  return s;
}

void ExpectSameStats(const RolloutStats& a, const RolloutStats& b) {
  EXPECT_EQ(a.seconds, b.seconds);
  EXPECT_EQ(a.generate_seconds, b.generate_seconds);
  EXPECT_EQ(a.env_seconds, b.env_seconds);
  EXPECT_EQ(a.generated_tokens, b.generated_tokens);
  EXPECT_EQ(a.prompt_tokens, b.prompt_tokens);
  EXPECT_EQ(a.cached_prompt_tokens, b.cached_prompt_tokens);
  EXPECT_EQ(a.rounds, b.rounds);
  EXPECT_EQ(a.episodes, b.episodes);
}

TEST(RolloutWireTest, WorkRequestRoundTrips) {
  const json j = OverTheWire(WorkRequestToJson({"rollout-3"}));
  EXPECT_EQ(j["op"], "work");
  EXPECT_EQ(WorkRequestFromJson(j, "request").worker, "rollout-3");
}

TEST(RolloutWireTest, WorkReplyWithAGroupRoundTrips) {
  WorkReply reply;
  reply.group.key = "5-2";
  reply.group.task = {"ehr_fhir", "test", 42, {{"family", "labs"}}};
  // Group seeds are SplitMix64 outputs: all 64 bits are used.
  reply.group.seed = std::numeric_limits<uint64_t>::max() - 5;
  reply.min_version = 6;
  reply.version = 7;
  const json j = OverTheWire(WorkReplyToJson(reply));
  EXPECT_EQ(j["ok"], true);
  const WorkReply back = WorkReplyFromJson(j, "reply");
  EXPECT_FALSE(back.stop);
  EXPECT_EQ(back.group.key, "5-2");
  EXPECT_EQ(back.group.task.env, "ehr_fhir");
  EXPECT_EQ(back.group.task.split, "test");
  EXPECT_EQ(back.group.task.task_index, 42);
  EXPECT_EQ(back.group.task.options, json({{"family", "labs"}}));
  EXPECT_EQ(back.group.seed, reply.group.seed);
  EXPECT_EQ(back.min_version, 6);
  EXPECT_EQ(back.version, 7);
}

TEST(RolloutWireTest, StopReplyRoundTrips) {
  WorkReply stop;
  stop.stop = true;
  const json j = OverTheWire(WorkReplyToJson(stop));
  EXPECT_FALSE(j.contains("group"));
  EXPECT_TRUE(WorkReplyFromJson(j, "reply").stop);
}

TEST(RolloutWireTest, ResultRequestRoundTripsEveryEpisodeAndStat) {
  ResultRequest request;
  request.worker = "rollout-1";
  request.key = "3-0";
  request.episodes = {Episode(0), Episode(1)};
  request.stats = SomeStats();
  request.reward_seconds = 0.375;
  const json j = OverTheWire(ResultRequestToJson(request));
  EXPECT_EQ(j["op"], "result");
  EXPECT_EQ(j["stats"]["reward_seconds"], 0.375);
  const ResultRequest back = ResultRequestFromJson(j, "request");
  EXPECT_EQ(back.worker, "rollout-1");
  EXPECT_EQ(back.key, "3-0");
  ASSERT_EQ(back.episodes.size(), 2u);
  EXPECT_TRUE(back.episodes[0] == request.episodes[0]);
  EXPECT_TRUE(back.episodes[1] == request.episodes[1]);
  ExpectSameStats(back.stats, request.stats);
  EXPECT_EQ(back.reward_seconds, 0.375);
}

TEST(RolloutWireTest, RolloutStatsRoundTripAndAbsentOnesReadAsZero) {
  ExpectSameStats(RolloutStatsFromJson(
                      OverTheWire(RolloutStatsToJson(SomeStats())), "stats"),
                  SomeStats());
  // A worker that sends only some stats still has its group used.
  const RolloutStats partial =
      RolloutStatsFromJson({{"generated_tokens", 4}}, "stats");
  EXPECT_EQ(partial.generated_tokens, 4);
  EXPECT_EQ(partial.rounds, 0);
  EXPECT_EQ(partial.generate_seconds, 0.0);
}

TEST(RolloutWireTest, ResultReplyRoundTrips) {
  const ResultReply accepted =
      ResultReplyFromJson(OverTheWire(ResultReplyToJson({true, ""})), "reply");
  EXPECT_TRUE(accepted.accepted);
  EXPECT_EQ(accepted.reason, "");
  const ResultReply stale = ResultReplyFromJson(
      OverTheWire(ResultReplyToJson({false, "stale"})), "reply");
  EXPECT_FALSE(stale.accepted);
  EXPECT_EQ(stale.reason, "stale");
}

TEST(RolloutWireTest, HeartbeatAndItsReplyRoundTrip) {
  const json beat =
      OverTheWire(distributed::HeartbeatToJson({"env_server-0", "env_server"}));
  EXPECT_EQ(beat["op"], "heartbeat");
  const distributed::HeartbeatMessage m =
      distributed::HeartbeatFromJson(beat, "request");
  EXPECT_EQ(m.worker, "env_server-0");
  EXPECT_EQ(m.role, "env_server");
  for (bool stop : {false, true}) {
    const json reply = OverTheWire(distributed::HeartbeatReplyToJson({stop}));
    EXPECT_EQ(distributed::HeartbeatReplyFromJson(reply, "reply").stop, stop);
  }
}

TEST(RolloutWireTest, MalformedMessagesNameTheField) {
  ResultRequest request;
  request.worker = "rollout-1";
  request.key = "3-0";
  request.episodes = {Episode(0), Episode(1)};
  request.stats = SomeStats();

  json bad_stat = ResultRequestToJson(request);
  bad_stat["stats"]["rounds"] = "7";
  EXPECT_NE(BadRequestMessage([&] {
              ResultRequestFromJson(bad_stat, "request");
            }).find("request.stats.rounds: expected an integer"),
            std::string::npos);

  json bad_episode = ResultRequestToJson(request);
  bad_episode["episodes"][1]["turns"] = "nope";
  const std::string episode_error =
      BadRequestMessage([&] { ResultRequestFromJson(bad_episode, "request"); });
  EXPECT_NE(episode_error.find("request.episodes[1]: trajectory.turns"),
            std::string::npos)
      << episode_error;

  json no_key = ResultRequestToJson(request);
  no_key.erase("key");
  EXPECT_NE(BadRequestMessage([&] {
              ResultRequestFromJson(no_key, "request");
            }).find("request.key: required field is missing"),
            std::string::npos);

  WorkReply reply;
  reply.group = {"1-0", {"echo", "train", 3, json::object()}, 11};
  json negative_seed = WorkReplyToJson(reply);
  negative_seed["group"]["seed"] = -1;
  EXPECT_NE(BadRequestMessage([&] {
              WorkReplyFromJson(negative_seed, "reply");
            }).find("reply.group.seed: expected an unsigned 64-bit integer"),
            std::string::npos);

  // A reply of the wrong operation is not read as this one.
  EXPECT_NE(BadRequestMessage([&] {
              WorkReplyFromJson(ResultReplyToJson({true, ""}), "reply");
            }).find("reply.op: got 'result', expected 'work'"),
            std::string::npos);

  const std::string role_error = BadRequestMessage([&] {
    distributed::HeartbeatFromJson(
        {{"op", "heartbeat"}, {"worker", "w"}, {"role", "learner"}}, "request");
  });
  EXPECT_NE(role_error.find("request.role: got 'learner', expected one of: "
                            "rollout, env_server, reward_server"),
            std::string::npos)
      << role_error;
}

TEST(RolloutWireTest, ErrorRepliesThrowTheLearnersTypedError) {
  const json error = wire::ErrorReply("bad_request", "request.worker: missing");
  EXPECT_THROW(WorkReplyFromJson(error, "reply"), BadRequest);
  EXPECT_THROW(ResultReplyFromJson(error, "reply"), BadRequest);
  EXPECT_THROW(distributed::HeartbeatReplyFromJson(
                   wire::ErrorReply("internal", "broken"), "reply"),
               InternalError);
}

}  // namespace
}  // namespace clinrl::rollout
