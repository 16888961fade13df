// Envs are created by name with JSON options. Registration is one line next
// to the env:  CLINRL_REGISTER_ENV(dx_dialogue, DxDialogueEnv::Create);
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "envs/env.h"

namespace clinrl::envs {

// Makes one env instance (one session) from the env's options. Options are
// validated here: an unknown or mistyped option throws ConfigError naming it.
using EnvFactory = std::function<std::unique_ptr<Env>(const json& options)>;

class EnvRegistry {
 public:
  static EnvRegistry& Global();
  void Register(const std::string& name, EnvFactory factory);
  // Throws NotFound listing the registered names.
  std::unique_ptr<Env> Create(const std::string& name,
                              const json& options = json::object()) const;
  bool Has(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted

 private:
  std::vector<std::pair<std::string, EnvFactory>> factories_;
};

struct RegisterEnv {
  RegisterEnv(const char* name, EnvFactory factory) {
    EnvRegistry::Global().Register(name, std::move(factory));
  }
};

}  // namespace clinrl::envs

#define CLINRL_REGISTER_ENV(id, factory) \
  static ::clinrl::envs::RegisterEnv clinrl_env_registration_##id(#id, factory)
