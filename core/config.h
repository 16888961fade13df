// Loading a config: JSON file, then `--set a.b.c=value` overrides, read into
// the schema structs (config_schema.h) whose member initialisers are the
// defaults. Merge order: defaults < file < --set.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config_schema.h"

namespace clinrl::config {

// Parses a JSON file; errors name the file, line and column.
json LoadJsonFile(const std::string& path);

// Parses `key.path=value` strings; errors name the malformed argument.
Overrides ParseOverrides(const std::vector<std::string>& assignments);

// Loads `path` (or nothing when empty) and applies `assignments`.
template <class T>
T ResolveConfig(const std::string& path,
                const std::vector<std::string>& assignments) {
  const json doc = path.empty() ? json::object() : LoadJsonFile(path);
  try {
    return ReadConfig<T>(doc, ParseOverrides(assignments));
  } catch (const ConfigError& e) {
    throw ConfigError(path.empty() ? std::string(e.what())
                                   : fmt::format("{}: {}", path, e.what()));
  }
}

}  // namespace clinrl::config
