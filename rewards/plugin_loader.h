// Reward plug-ins from shared libraries (config: rewards.plugins). A plug-in
// library registers its rewards with CLINRL_REGISTER_REWARD from static
// initialisers, which run inside dlopen; it resolves RewardRegistry::Global()
// from the executable (linked with -rdynamic), so it must not link
// clinrl_rewards itself. It also exports
//   extern "C" int clinrl_reward_plugin_abi() { return
//   CLINRL_REWARD_PLUGIN_ABI; }
// so a library built against another version of reward.h is refused before
// any of its rewards is used.
#pragma once

#include <string>
#include <vector>

// Bumped whenever Reward's virtual functions or the registration a plug-in
// calls change (2: bounded_time; 3: registration through Registry::Add).
#define CLINRL_REWARD_PLUGIN_ABI 3

namespace clinrl::rewards {

struct LoadedPlugin {
  std::string path;
  std::vector<std::string> rewards;  // names it registered
};

// dlopen(RTLD_NOW | RTLD_LOCAL). Throws IoError naming the file and dlerror()
// when it cannot be loaded or lacks the ABI symbol, BadRequest on an ABI
// mismatch. Loading the same path twice is a no-op returning the first load.
LoadedPlugin LoadRewardPlugin(const std::string& path);
std::vector<LoadedPlugin> LoadRewardPlugins(
    const std::vector<std::string>& paths);

// rewards.plugins entries as the loader should open them. dlopen never
// looks in the current directory for a bare name, so a relative entry that
// names a file in the folder of the config file `config_path` (when given)
// or else in the current directory becomes that file's absolute path; any
// other entry stays as written (a bare library name is then found on the
// library search path).
std::vector<std::string> ResolvePluginPaths(
    const std::vector<std::string>& paths, const std::string& config_path);

}  // namespace clinrl::rewards
