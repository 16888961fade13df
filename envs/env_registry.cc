#include "envs/env_registry.h"

namespace clinrl::envs {

EnvRegistry::EnvRegistry()
    : Registry("env",
               "env '{name}' is not registered; registered envs: {known}") {}

EnvRegistry& EnvRegistry::Global() {
  static EnvRegistry registry;
  return registry;
}

std::unique_ptr<Env> EnvRegistry::Create(const std::string& name,
                                         const json& options,
                                         const std::string& path) const {
  return Get(name)(options, path);
}

}  // namespace clinrl::envs
