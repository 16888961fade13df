// Episodes of consult_rubric as the runtime records them, and the `rubric`
// reward plug-in's result for the reward spec they carry: shared by the
// consult_rubric tests that hold the env's reward against the plug-in's.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "core/trajectory.h"
#include "envs/env.h"
#include "rewards/composite_reward.h"

namespace clinrl::envs::consult::testing {

inline ResetResult ResetTo(Env& env, const std::string& split, int64_t index) {
  ResetRequest r;
  r.split = split;
  r.task_index = index;
  return env.Reset(r);
}

// One episode: reset to the task, reply, and the trajectory the runtime
// would record for it (reset observation, the reply, the env's messages).
struct Episode {
  StepResult step;
  Trajectory trajectory;
};

inline Episode Play(Env& env, const std::string& split, int64_t index,
                    const std::string& reply) {
  const ResetResult reset = ResetTo(env, split, index);
  Episode e;
  e.trajectory.env = "consult_rubric";
  e.trajectory.reward_spec = reset.info["reward_spec"];
  for (const auto& m : reset.observation) {
    e.trajectory.turns.push_back({m.role, m.content, {}, {}});
  }
  e.trajectory.turns.push_back({"assistant", reply, {}, {}});
  e.step = env.Step(reply);
  for (const auto& m : e.step.observation) {
    e.trajectory.turns.push_back({m.role, m.content, {}, {}});
  }
  e.trajectory.info = e.step.info;
  return e;
}

// The episode's reward spec scored in this process by the plug-ins it names.
inline RewardResult PluginResult(const Trajectory& t) {
  rewards::ScoreOptions inline_scoring;
  inline_scoring.timeout_ms = 0;
  const RewardResult r = rewards::ScoreTrajectory(t, inline_scoring);
  EXPECT_FALSE(rewards::IsFlagged(r)) << rewards::ComponentErrors(r).dump();
  return r;
}

inline double PluginTotal(const Trajectory& t) { return PluginResult(t).total; }

}  // namespace clinrl::envs::consult::testing
