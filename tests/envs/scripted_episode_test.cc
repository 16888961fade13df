#include "envs/scripted_episode.h"

#include <gtest/gtest.h>

#include "tests/envs/test_envs.h"

namespace clinrl::envs {
namespace {

class FixedPolicy : public ScriptedPolicy {
 public:
  explicit FixedPolicy(std::vector<std::string> actions)
      : actions_(std::move(actions)) {}
  std::string Act(const Observation& transcript, const json& info) override {
    seen_.push_back(transcript.size());
    return actions_.at(next_++ % actions_.size());
  }
  std::vector<size_t> seen_;

 private:
  std::vector<std::string> actions_;
  size_t next_ = 0;
};

TEST(ScriptedEpisode, RecordsTheTranscriptAsTurnsWithActionsAsAssistant) {
  auto env = testing::TestRegistry().Create("echo", {{"max_turns", 5}});
  const std::string word = EchoEnv::WordFor("test", 3);
  FixedPolicy policy({"", "hmm", word});
  ScriptedEpisodeRequest req{"echo", "test", 3, 7, json::object()};
  ScriptedEpisodeStats stats;
  Trajectory t = PlayScriptedEpisode(*env, policy, req, &stats);
  EXPECT_EQ(t.termination, Termination::kFinished);
  EXPECT_EQ(t.env, "echo");
  EXPECT_EQ(t.task_index, 3);
  EXPECT_EQ(t.seed, 7);
  // system, user, then (assistant, env reply) x 3.
  ASSERT_EQ(t.turns.size(), 8u);
  EXPECT_EQ(t.turns[2].role, "assistant");
  EXPECT_EQ(t.turns[6].role, "assistant");
  EXPECT_EQ(t.turns[6].content, word);
  EXPECT_EQ(t.turns[5].content, "hmm");
  EXPECT_EQ(t.step_rewards, (std::vector<double>{0.0, 0.0, 1.0}));
  EXPECT_EQ(t.reward_spec["success"], "word");
  EXPECT_EQ(t.info["metrics"]["correct"], 1.0);
  // The policy saw the growing transcript: 2, 4, 6 messages.
  EXPECT_EQ(policy.seen_, (std::vector<size_t>{2, 4, 6}));
  EXPECT_EQ(stats.actions, 3);
  EXPECT_EQ(stats.invalid_actions, 1);
  EXPECT_EQ(stats.correct, 1.0);
}

TEST(ScriptedEpisode, TurnBudgetAndEnvErrorsEndTheEpisode) {
  auto env = testing::TestRegistry().Create("echo", {{"max_turns", 2}});
  FixedPolicy wrong({"no"});
  ScriptedEpisodeStats stats;
  Trajectory t =
      PlayScriptedEpisode(*env, wrong, {"echo", "train", 0, 0, {}}, &stats);
  EXPECT_EQ(t.termination, Termination::kMaxTurns);
  EXPECT_EQ(stats.actions, 2);
  EXPECT_EQ(stats.correct, 0.0);

  auto bad = testing::TestRegistry().Create("misbehaving", {});
  FixedPolicy boom({"x", "boom"});
  t = PlayScriptedEpisode(*bad, boom, {"misbehaving", "train", 0, 0, {}});
  EXPECT_EQ(t.termination, Termination::kEnvError);
  EXPECT_NE(t.info["error"].get<std::string>().find("exploded"),
            std::string::npos);
  EXPECT_EQ(t.step_rewards.size(), 1u);
}

}  // namespace
}  // namespace clinrl::envs
