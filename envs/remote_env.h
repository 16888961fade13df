// An Env whose episodes run on an env server: the Env interface over the env
// protocol. Lets code written against Env (the conformance suite, `clinrl env
// eval --endpoint`) play envs served elsewhere, in C++ or in Python, with
// the scripted policies the server plays.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "envs/env.h"
#include "envs/env_client.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs {

class RemoteEnv : public Env {
 public:
  RemoteEnv(std::string endpoint, std::string env_name,
            int64_t request_timeout_ms = 30000);
  // Closes the open session, if any.
  ~RemoteEnv() override;

  EnvSpec Spec() const override;
  // Opens a session on the first call and resets it in place afterwards.
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;
  // The env protocol's truncate op on the open session.
  StepResult Truncate() override;

  // The server's scripted policy `policy` (one of Spec().policies), played
  // on the server by the act op for this env's current session. Its options
  // are checked at the first act (a bad one throws BadRequest naming
  // request.options).
  std::unique_ptr<ScriptedPolicy> Policy(const std::string& policy,
                                         uint64_t seed, json options);

  const std::string& session() const { return session_; }
  EnvClient& client() { return *client_; }

 private:
  std::string env_name_;
  std::unique_ptr<EnvClient> client_;
  mutable std::optional<EnvSpec> spec_;
  std::string session_;
};

}  // namespace clinrl::envs
