#include "core/trajectory.h"

#include "core/error.h"
#include "core/wire.h"

namespace clinrl {

using nlohmann::json;

const char* TerminationName(Termination t) {
  switch (t) {
    case Termination::kFinished:
      return "finished";
    case Termination::kMaxTurns:
      return "max_turns";
    case Termination::kMaxTokens:
      return "max_tokens";
    case Termination::kEnvError:
      return "env_error";
  }
  return "finished";
}

Termination ParseTermination(const std::string& name) {
  for (Termination t : {Termination::kFinished, Termination::kMaxTurns,
                        Termination::kMaxTokens, Termination::kEnvError}) {
    if (name == TerminationName(t)) return t;
  }
  throw BadRequest(fmt::format(
      "trajectory.termination: got '{}', expected one of: finished, "
      "max_turns, max_tokens, env_error",
      name));
}

bool Trajectory::operator==(const Trajectory& o) const {
  return episode_id == o.episode_id && group_id == o.group_id && env == o.env &&
         split == o.split && task_index == o.task_index && seed == o.seed &&
         policy_version == o.policy_version && turns == o.turns &&
         step_rewards == o.step_rewards && reward == o.reward &&
         termination == o.termination && timings == o.timings &&
         reward_spec == o.reward_spec && info == o.info;
}

json ToJson(const Trajectory& t) {
  json turns = json::array();
  for (const Turn& turn : t.turns) {
    json jt = {{"role", turn.role}, {"content", turn.content}};
    if (!turn.token_ids.empty() || !turn.logprobs.empty()) {
      jt["token_ids"] = turn.token_ids;
      jt["logprobs"] = turn.logprobs;
    }
    turns.push_back(std::move(jt));
  }
  json components = json::object();
  for (const auto& [name, c] : t.reward.components) {
    components[name] = {
        {"score", c.score}, {"weight", c.weight}, {"details", c.details}};
  }
  return {
      {"episode_id", t.episode_id},
      {"group_id", t.group_id},
      {"env", t.env},
      {"split", t.split},
      {"task_index", t.task_index},
      {"seed", t.seed},
      {"policy_version", t.policy_version},
      {"turns", std::move(turns)},
      {"step_rewards", t.step_rewards},
      {"reward", {{"total", t.reward.total}, {"components", components}}},
      {"termination", TerminationName(t.termination)},
      {"timings", t.timings},
      {"reward_spec", t.reward_spec},
      {"info", t.info},
  };
}

Trajectory TrajectoryFromJson(const json& j) {
  const wire::Fields f(j, "trajectory");
  Trajectory t;
  t.episode_id = f.String("episode_id");
  t.group_id = f.String("group_id", "");
  t.env = f.String("env");
  t.split = f.String("split", "");
  t.task_index = f.Int("task_index", -1);
  t.seed = f.Int("seed", 0);
  t.policy_version = f.Int("policy_version", 0);
  const json& turns = f.Array("turns");
  for (size_t i = 0; i < turns.size(); ++i) {
    const wire::Fields ft(turns[i], fmt::format("trajectory.turns[{}]", i));
    Turn turn;
    turn.role = ft.String("role");
    turn.content = ft.String("content");
    if (ft.Has("token_ids")) {
      turn.token_ids = ft.IntArray("token_ids");
      turn.logprobs = ft.FloatArray("logprobs");
      if (turn.logprobs.size() != turn.token_ids.size()) {
        throw BadRequest(fmt::format(
            "trajectory.turns[{}].logprobs: expected {} values (one per token "
            "id), got {}",
            i, turn.token_ids.size(), turn.logprobs.size()));
      }
    }
    t.turns.push_back(std::move(turn));
  }
  if (f.Has("step_rewards")) t.step_rewards = f.DoubleArray("step_rewards");
  if (f.Has("reward")) {
    const wire::Fields fr(f.Object("reward"), "trajectory.reward");
    t.reward.total = fr.Double("total", 0.0);
    if (fr.Has("components")) {
      const json& comps = fr.Object("components");
      for (auto it = comps.begin(); it != comps.end(); ++it) {
        const wire::Fields fc(
            it.value(),
            fmt::format("trajectory.reward.components.{}", it.key()));
        RewardComponent c;
        c.score = fc.Double("score");
        c.weight = fc.Double("weight", 1.0);
        if (fc.Has("details")) c.details = fc.Object("details");
        t.reward.components[it.key()] = std::move(c);
      }
    }
  }
  t.termination = ParseTermination(f.String("termination", "finished"));
  if (f.Has("timings")) {
    const json& timings = f.Object("timings");
    for (auto it = timings.begin(); it != timings.end(); ++it) {
      const wire::Fields ftm(timings, "trajectory.timings");
      t.timings[it.key()] = ftm.Double(it.key().c_str());
    }
  }
  if (f.Has("reward_spec")) t.reward_spec = f.Object("reward_spec");
  if (f.Has("info")) t.info = f.Object("info");
  return t;
}

}  // namespace clinrl
