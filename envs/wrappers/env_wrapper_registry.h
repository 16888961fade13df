// Robustness wrappers (docs/envs/wrappers.md): an Env around another Env that
// rewrites its observations without changing the answer (brand/generic drug
// names, an irrelevant sentence, demographic words), registered by name like
// envs:  CLINRL_REGISTER_ENV_WRAPPER(distractor, DistractorEnv::Wrap);
//
// Header-only on purpose: the env runtime (envs/env_pool.cc) and the CLI wrap
// envs named in a config through this registry, while the wrappers
// themselves live in their own REGISTRY library; a binary that does not
// link it simply knows no wrapper names.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clinrl_config.h"
#include "core/error.h"
#include "core/registry.h"
#include "envs/env.h"

namespace clinrl::envs {

// Wraps `inner`, reading the wrapper's options (ConfigError naming
// `path.<key>` for a bad one).
using EnvWrapperFactory = std::function<std::unique_ptr<Env>(
    std::unique_ptr<Env> inner, const json& options, const std::string& path)>;

class EnvWrapperRegistry : public Registry<EnvWrapperFactory> {
 public:
  EnvWrapperRegistry()
      : Registry("env wrapper",
                 "env wrapper '{name}' is not registered; registered "
                 "wrappers: {known}") {}
  // One per process, shared by every translation unit (an inline function's
  // static is a single object).
  static EnvWrapperRegistry& Global() {
    static EnvWrapperRegistry registry;
    return registry;
  }
};

// Throws ConfigError naming `<path>.<j>.name`, the value and the known names
// for a wrapper that is not registered.
inline void CheckEnvWrapperNames(const std::vector<EnvEntry::Wrapper>& wrappers,
                                 const std::string& path) {
  const auto& registry = EnvWrapperRegistry::Global();
  for (size_t j = 0; j < wrappers.size(); ++j) {
    if (registry.Has(wrappers[j].name)) continue;
    const auto known = registry.Names();
    throw ConfigError(
        fmt::format("{}.{}.name: unknown env wrapper '{}'; expected one of: {}",
                    path, j, wrappers[j].name,
                    known.empty() ? std::string("(none)")
                                  : fmt::format("{}", fmt::join(known, ", "))));
  }
}

// `env` wrapped by each of `wrappers` in order (the first is innermost);
// `path` names the list in errors (`envs.0.wrappers`).
inline std::unique_ptr<Env> WrapEnv(
    std::unique_ptr<Env> env, const std::vector<EnvEntry::Wrapper>& wrappers,
    const std::string& path) {
  CheckEnvWrapperNames(wrappers, path);
  for (size_t j = 0; j < wrappers.size(); ++j) {
    const auto& factory = EnvWrapperRegistry::Global().Get(wrappers[j].name);
    env = factory(std::move(env), wrappers[j].options,
                  fmt::format("{}.{}.options", path, j));
  }
  return env;
}

}  // namespace clinrl::envs

#define CLINRL_REGISTER_ENV_WRAPPER(id, factory)                            \
  static ::clinrl::StaticRegistration clinrl_env_wrapper_registration_##id( \
      [] { ::clinrl::envs::EnvWrapperRegistry::Global().Add(#id, factory); })
