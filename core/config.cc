#include "core/config.h"

#include <fstream>
#include <sstream>

namespace clinrl::config {

json LoadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw ConfigError(fmt::format("{}: cannot open config file", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::parse_error& e) {
    throw ConfigError(fmt::format("{}: not valid JSON: {}", path, e.what()));
  }
}

Overrides ParseOverrides(const std::vector<std::string>& assignments) {
  Overrides out;
  for (const auto& a : assignments) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError(fmt::format(
          "--set '{}': expected key.path=value (for example trainer.lr=3e-6)",
          a));
    }
    const std::string key = a.substr(0, eq);
    if (key.front() == '.' || key.back() == '.' ||
        key.find("..") != std::string::npos) {
      throw ConfigError(
          fmt::format("--set '{}': '{}' is not a dotted key path", a, key));
    }
    out[key] = a.substr(eq + 1);
  }
  return out;
}

}  // namespace clinrl::config
