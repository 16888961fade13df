#include "rewards/plugin_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>

#include "core/error.h"
#include "core/log.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {

LoadedPlugin LoadRewardPlugin(const std::string& path) {
  static std::mutex mutex;
  static auto* loaded = new std::map<std::string, LoadedPlugin>();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = loaded->find(path);
  if (it != loaded->end()) return it->second;

  const auto before = RewardRegistry::Global().Names();
  // The library's static initialisers register its rewards during dlopen.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw IoError(fmt::format("rewards.plugins: cannot load \"{}\": {}", path,
                              why ? why : "unknown dlopen error"));
  }
  dlerror();  // clear, so a null symbol is told apart from an error
  void* symbol = dlsym(handle, "clinrl_reward_plugin_abi");
  const char* why = dlerror();
  if (why != nullptr || symbol == nullptr) {
    // Its rewards may already be registered; keep the library mapped (their
    // factories point into it) but refuse it loudly.
    throw IoError(fmt::format(
        "rewards.plugins: \"{}\" does not export clinrl_reward_plugin_abi() "
        "(see docs/rewards.md, \"Plug-ins from shared libraries\"): {}",
        path, why ? why : "symbol is null"));
  }
  const int abi = reinterpret_cast<int (*)()>(symbol)();
  if (abi != CLINRL_REWARD_PLUGIN_ABI) {
    throw BadRequest(fmt::format(
        "rewards.plugins: \"{}\" was built for reward plug-in ABI {}, this "
        "clinrl expects {}; rebuild it against this clinrl's headers",
        path, abi, CLINRL_REWARD_PLUGIN_ABI));
  }
  LoadedPlugin plugin;
  plugin.path = path;
  for (const auto& name : RewardRegistry::Global().Names()) {
    if (!std::binary_search(before.begin(), before.end(), name)) {
      plugin.rewards.push_back(name);
    }
  }
  CLINRL_LOG_INFO("loaded reward plug-in {} ({} rewards: {})", path,
                  plugin.rewards.size(), fmt::join(plugin.rewards, ", "));
  loaded->emplace(path, plugin);
  return plugin;
}

std::vector<LoadedPlugin> LoadRewardPlugins(
    const std::vector<std::string>& paths) {
  std::vector<LoadedPlugin> out;
  for (const auto& p : paths) out.push_back(LoadRewardPlugin(p));
  return out;
}

std::vector<std::string> ResolvePluginPaths(
    const std::vector<std::string>& paths, const std::string& config_path) {
  namespace fs = std::filesystem;
  std::vector<fs::path> folders;
  if (!config_path.empty()) {
    folders.push_back(fs::absolute(config_path).parent_path());
  }
  folders.push_back(fs::current_path());
  std::vector<std::string> resolved;
  for (const std::string& path : paths) {
    std::string found = path;
    if (!path.empty() && fs::path(path).is_relative()) {
      for (const fs::path& folder : folders) {
        std::error_code error;
        const fs::path candidate = folder / path;
        if (fs::is_regular_file(candidate, error)) {
          found = fs::weakly_canonical(candidate, error).string();
          if (error) found = candidate.string();
          break;
        }
      }
    }
    resolved.push_back(found);
  }
  return resolved;
}

}  // namespace clinrl::rewards
