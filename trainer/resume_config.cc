#include "trainer/resume_config.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/atomic_file.h"
#include "core/config_schema.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "core/log.h"

namespace clinrl::trainer {

using nlohmann::json;

namespace {

// Objects are walked key by key; arrays of objects (envs) element by
// element; anything else is one value.
void Flatten(const json& value, const std::string& prefix,
             std::map<std::string, json>* out) {
  const bool objects = value.is_array() && !value.empty() &&
                       std::all_of(value.begin(), value.end(),
                                   [](const json& v) { return v.is_object(); });
  if (value.is_object() && !value.empty()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      Flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(),
              out);
    }
  } else if (objects) {
    for (size_t i = 0; i < value.size(); ++i) {
      Flatten(value[i], prefix + "." + std::to_string(i), out);
    }
  } else {
    (*out)[prefix] = value;
  }
}

bool Matches(const std::string& key, const std::string& pattern) {
  return key == pattern || (key.size() > pattern.size() &&
                            key.compare(0, pattern.size(), pattern) == 0 &&
                            key[pattern.size()] == '.');
}

}  // namespace

std::vector<ConfigChange> DiffConfigs(const json& before, const json& after) {
  std::map<std::string, json> old_values, new_values;
  Flatten(before, "", &old_values);
  Flatten(after, "", &new_values);
  std::vector<ConfigChange> changes;
  for (const auto& [key, value] : new_values) {
    auto old = old_values.find(key);
    if (old == old_values.end()) {
      changes.push_back({key, "(absent)", value.dump()});
    } else if (old->second != value) {
      changes.push_back({key, old->second.dump(), value.dump()});
    }
  }
  for (const auto& [key, value] : old_values) {
    if (!new_values.count(key))
      changes.push_back({key, value.dump(), "(absent)"});
  }
  return changes;
}

bool IsOperationalKey(const std::string& key) {
  // Where things run and how long to wait, what is evaluated and how often
  // it is saved: none of these changes a training step.
  static const char* const kOperational[] = {"run.threads",
                                             "run.out_dir",
                                             "run.name",
                                             "rewards.endpoint",
                                             "rewards.workers",
                                             "rewards.timeout_ms",
                                             "distributed",
                                             "eval",
                                             "trainer.checkpoint_every",
                                             "trainer.keep_checkpoints",
                                             "trainer.trajectory_sample_every"};
  for (const char* operational : kOperational) {
    if (Matches(key, operational)) return true;
  }
  // An env server's address, not what it serves.
  const size_t dot = key.rfind('.');
  return key.rfind("envs.", 0) == 0 && dot != std::string::npos &&
         key.substr(dot + 1) == "endpoint" &&
         std::count(key.begin(), key.end(), '.') == 2;
}

void CheckResumedConfig(const std::string& run_root, const ClinrlConfig& config,
                        const std::vector<std::string>& allowed) {
  const std::string path = run_root + "/config.json";
  if (!std::filesystem::exists(path)) return;
  const json before = json::parse(ReadFile(path), nullptr, false);
  if (before.is_discarded()) {
    throw IoError(fmt::format(
        "--resume: {} is not valid JSON; it records the config the run "
        "started with",
        path));
  }
  const std::vector<ConfigChange> changes =
      DiffConfigs(before, config::WriteConfig(config));
  if (changes.empty()) return;
  std::vector<std::string> refused;
  for (const ConfigChange& change : changes) {
    const bool allowed_change =
        IsOperationalKey(change.key) ||
        std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
          return Matches(change.key, a);
        });
    if (!allowed_change) {
      refused.push_back(
          fmt::format("{} ({} -> {})", change.key, change.from, change.to));
    }
  }
  if (!refused.empty()) {
    throw ConfigError(fmt::format(
        "--resume: the config changes what the run trains since it started "
        "({}): {}; resume with the run's config, or name each key with "
        "--allow-config-change KEY",
        path, fmt::join(refused, ", ")));
  }
  JsonlWriter log(run_root + "/config_changes.jsonl", /*fsync_each_line=*/true);
  json line = {{"event", "resume"}, {"changes", json::array()}};
  for (const ConfigChange& change : changes) {
    line["changes"].push_back(
        {{"key", change.key}, {"from", change.from}, {"to", change.to}});
    CLINRL_LOG_WARN("--resume: {} changed from {} to {}", change.key,
                    change.from, change.to);
  }
  log.Write(line);
}

}  // namespace clinrl::trainer
