#include "core/trajectory.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace clinrl {
namespace {

using nlohmann::json;

Trajectory Sample() {
  Trajectory t;
  t.episode_id = "ep-7";
  t.group_id = "g-2";
  t.env = "dx_dialogue";
  t.split = "train";
  t.task_index = 41;
  t.seed = 1234;
  t.policy_version = 3;
  t.turns.push_back({"system", "You are a doctor.", {}, {}});
  t.turns.push_back({"user", "I have chest pain.", {}, {}});
  t.turns.push_back(
      {"assistant", "ASK: radiating?", {5, 9, 300}, {-0.5f, -1.25f, -3e-3f}});
  t.step_rewards = {0.0, 0.5};
  t.reward.total = 0.75;
  t.reward.components["icd10"] = {1.0, 0.5, {{"code", "I21.9"}}};
  t.reward.components["cost"] = {0.5, 0.5, json::object()};
  t.termination = Termination::kMaxTurns;
  t.timings = {{"rollout_s", 1.5}, {"reward_s", 0.01}};
  t.reward_spec = {{"icd10", "I21.9"}};
  t.info = {{"invalid_actions", 1}};
  return t;
}

TEST(TrajectoryTest, JsonRoundTripIsExact) {
  const Trajectory t = Sample();
  const json j = ToJson(t);
  const Trajectory back = TrajectoryFromJson(j);
  EXPECT_EQ(back, t);
  // And through text, as trajectories.jsonl stores it.
  EXPECT_EQ(TrajectoryFromJson(json::parse(j.dump())), t);
  EXPECT_EQ(j["termination"], "max_turns");
  EXPECT_EQ(j["turns"][2]["token_ids"], json({5, 9, 300}));
  EXPECT_FALSE(j["turns"][0].contains("token_ids"));
}

TEST(TrajectoryTest, MismatchedLogprobsNameTheTurn) {
  json j = ToJson(Sample());
  j["turns"][2]["logprobs"] = {-0.5};
  try {
    TrajectoryFromJson(j);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("trajectory.turns[2].logprobs"),
              std::string::npos)
        << e.what();
  }
}

TEST(TrajectoryTest, BadFieldsAreNamed) {
  json j = ToJson(Sample());
  j["task_index"] = "seven";
  EXPECT_THROW(
      {
        try {
          TrajectoryFromJson(j);
        } catch (const BadRequest& e) {
          EXPECT_NE(std::string(e.what()).find("trajectory.task_index"),
                    std::string::npos);
          throw;
        }
      },
      BadRequest);
  j = ToJson(Sample());
  j["termination"] = "exploded";
  EXPECT_THROW(TrajectoryFromJson(j), BadRequest);
  j = ToJson(Sample());
  j.erase("episode_id");
  EXPECT_THROW(TrajectoryFromJson(j), BadRequest);
  EXPECT_THROW(TrajectoryFromJson(json::array()), BadRequest);
}

}  // namespace
}  // namespace clinrl
