// Envs are created by name with JSON options. Registration is one line next
// to the env:  CLINRL_REGISTER_ENV(dx_dialogue, DxDialogueEnv::Create);
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/registry.h"
#include "envs/env.h"

namespace clinrl::envs {

// Makes one env instance (one session) from the env's options. Options are
// validated here, through the config schema (envs/env_options.h): an
// unknown, mistyped or out-of-range option throws ConfigError naming it
// under `path`, where the options came from (`envs.0.options` in a run
// config, `options` by default).
using EnvFactory = std::function<std::unique_ptr<Env>(const json& options,
                                                      const std::string& path)>;

class EnvRegistry : public Registry<EnvFactory> {
 public:
  EnvRegistry();
  static EnvRegistry& Global();
  // Throws NotFound listing the registered names, ConfigError for options.
  std::unique_ptr<Env> Create(const std::string& name,
                              const json& options = json::object(),
                              const std::string& path = "options") const;
};

}  // namespace clinrl::envs

#define CLINRL_REGISTER_ENV(id, factory)                            \
  static ::clinrl::StaticRegistration clinrl_env_registration_##id( \
      [] { ::clinrl::envs::EnvRegistry::Global().Add(#id, factory); })
