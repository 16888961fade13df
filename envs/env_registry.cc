#include "envs/env_registry.h"

#include <algorithm>

#include "core/error.h"

namespace clinrl::envs {

EnvRegistry& EnvRegistry::Global() {
  static EnvRegistry registry;
  return registry;
}

void EnvRegistry::Register(const std::string& name, EnvFactory factory) {
  CLINRL_CHECK(!Has(name), "env '{}' registered twice", name);
  factories_.emplace_back(name, std::move(factory));
}

bool EnvRegistry::Has(const std::string& name) const {
  return std::any_of(factories_.begin(), factories_.end(),
                     [&](const auto& f) { return f.first == name; });
}

std::vector<std::string> EnvRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& f : factories_) names.push_back(f.first);
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<Env> EnvRegistry::Create(const std::string& name,
                                         const json& options) const {
  for (const auto& f : factories_) {
    if (f.first == name) return f.second(options);
  }
  std::string known;
  for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
  throw NotFound(fmt::format("env '{}' is not registered; registered envs: {}",
                             name, known.empty() ? "(none)" : known));
}

}  // namespace clinrl::envs
