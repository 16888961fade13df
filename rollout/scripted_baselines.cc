#include "rollout/scripted_baselines.h"

#include "core/error.h"
#include "envs/env_registry.h"
#include "envs/remote_env.h"
#include "envs/scripted_episode.h"
#include "envs/scripted_policy.h"

namespace clinrl::rollout {

std::vector<Trajectory> PlayScriptedEpisodes(
    const ScriptedRunOptions& options) {
  std::unique_ptr<envs::Env> env;
  envs::RemoteEnv* remote = nullptr;
  if (!options.endpoint.empty()) {
    auto served =
        std::make_unique<envs::RemoteEnv>(options.endpoint, options.env);
    remote = served.get();
    env = std::move(served);
  } else {
    env = envs::EnvRegistry::Global().Create(options.env, options.env_options);
  }
  const envs::EnvSpec spec = env->Spec();
  auto split = spec.splits.find(options.split);
  if (split == spec.splits.end() || split->second <= 0) {
    throw BadRequest(fmt::format("env '{}' has no tasks in split '{}'",
                                 options.env, options.split));
  }
  std::vector<Trajectory> out;
  out.reserve(static_cast<size_t>(options.episodes));
  for (int64_t i = 0; i < options.episodes; ++i) {
    const uint64_t seed = options.seed * 1000003u + static_cast<uint64_t>(i);
    auto policy =
        remote != nullptr
            ? remote->Policy(options.policy, seed, options.policy_options)
            : envs::ScriptedPolicyRegistry::Global().Create(
                  options.env, options.policy, seed, options.policy_options);
    envs::ScriptedEpisodeRequest request;
    request.env_name = options.env;
    request.split = options.split;
    request.task_index = (options.first_task + i) % split->second;
    request.seed = static_cast<int64_t>(options.seed);
    out.push_back(envs::PlayScriptedEpisode(*env, *policy, request));
  }
  return out;
}

std::vector<std::string> ScriptedPoliciesFor(const std::string& env,
                                             const std::string& endpoint) {
  if (!endpoint.empty()) return envs::RemoteEnv(endpoint, env).Spec().policies;
  if (!envs::EnvRegistry::Global().Has(env)) return {};
  return envs::ScriptedPolicyRegistry::Global().PoliciesFor(env);
}

}  // namespace clinrl::rollout
