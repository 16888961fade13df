#include "rollout/scripted_baselines.h"

#include "core/error.h"
#include "envs/env_registry.h"
#include "envs/scripted_episode.h"
#include "envs/scripted_policy.h"

namespace clinrl::rollout {

std::vector<Trajectory> PlayScriptedEpisodes(
    const ScriptedRunOptions& options) {
  auto env =
      envs::EnvRegistry::Global().Create(options.env, options.env_options);
  const envs::EnvSpec spec = env->Spec();
  auto split = spec.splits.find(options.split);
  if (split == spec.splits.end() || split->second <= 0) {
    throw BadRequest(fmt::format("env '{}' has no tasks in split '{}'",
                                 options.env, options.split));
  }
  std::vector<Trajectory> out;
  out.reserve(static_cast<size_t>(options.episodes));
  for (int64_t i = 0; i < options.episodes; ++i) {
    auto policy = envs::ScriptedPolicyRegistry::Global().Create(
        options.env, options.policy,
        options.seed * 1000003u + static_cast<uint64_t>(i),
        options.policy_options);
    envs::ScriptedEpisodeRequest request;
    request.env_name = options.env;
    request.split = options.split;
    request.task_index = (options.first_task + i) % split->second;
    request.seed = static_cast<int64_t>(options.seed);
    out.push_back(envs::PlayScriptedEpisode(*env, *policy, request));
  }
  return out;
}

}  // namespace clinrl::rollout
