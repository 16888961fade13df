#include "envs/scripted_episode.h"

#include <chrono>

#include "core/error.h"

namespace clinrl::envs {

namespace {

void Append(Trajectory& t, Observation& transcript, const Observation& obs) {
  for (const ChatMessage& m : obs) {
    t.turns.push_back({m.role, m.content, {}, {}});
    transcript.push_back(m);
  }
}

}  // namespace

Trajectory PlayScriptedEpisode(Env& env, ScriptedPolicy& policy,
                               const ScriptedEpisodeRequest& request,
                               ScriptedEpisodeStats* stats) {
  const auto start = std::chrono::steady_clock::now();
  ScriptedEpisodeStats local;
  Trajectory t;
  t.episode_id = fmt::format("{}-{}-{}-{}", request.env_name, request.split,
                             request.task_index, request.seed);
  t.group_id = fmt::format("{}-{}-{}", request.env_name, request.split,
                           request.task_index);
  t.env = request.env_name;
  t.split = request.split;
  t.task_index = request.task_index;
  t.seed = request.seed;
  t.termination = Termination::kMaxTurns;

  const int64_t max_turns = env.Spec().max_turns;
  ResetRequest reset;
  reset.split = request.split;
  reset.task_index = request.task_index;
  reset.options = request.options.is_null() ? json::object() : request.options;
  ResetResult first = env.Reset(reset);
  Observation transcript;
  Append(t, transcript, first.observation);
  if (first.info.contains("reward_spec")) {
    t.reward_spec = first.info["reward_spec"];
  }
  json info = first.info;
  try {
    for (int64_t turn = 0; turn < max_turns; ++turn) {
      const std::string action = policy.Act(transcript, info);
      ++local.actions;
      t.turns.push_back({"assistant", action, {}, {}});
      transcript.push_back({"assistant", action});
      StepResult step = env.Step(action);
      Append(t, transcript, step.observation);
      t.step_rewards.push_back(step.reward);
      info = std::move(step.info);
      if (step.terminated) {
        t.termination = Termination::kFinished;
        break;
      }
      if (step.truncated) break;
    }
  } catch (const std::exception& e) {
    t.termination = Termination::kEnvError;
    info["error"] = e.what();
  }
  t.info = info;
  if (info.is_object()) {
    auto inv = info.find("invalid_actions");
    if (inv != info.end() && inv->is_number()) {
      local.invalid_actions = inv->get<int64_t>();
    }
    auto metrics = info.find("metrics");
    if (metrics != info.end() && metrics->is_object()) {
      auto c = metrics->find("correct");
      if (c != metrics->end() && c->is_number())
        local.correct = c->get<double>();
      auto cost = metrics->find("cost");
      if (cost != metrics->end() && cost->is_number()) {
        local.cost = cost->get<double>();
      }
    }
  }
  t.timings["episode_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (stats != nullptr) *stats = local;
  return t;
}

}  // namespace clinrl::envs
