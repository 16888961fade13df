#include "envs/remote_env.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "core/log.h"

namespace clinrl::envs {

RemoteEnv::RemoteEnv(std::string endpoint, std::string env_name,
                     int64_t request_timeout_ms)
    : env_name_(std::move(env_name)),
      client_(std::make_unique<EnvClient>(
          EnvClientOptions{std::move(endpoint), request_timeout_ms})) {}

RemoteEnv::~RemoteEnv() {
  if (session_.empty()) return;
  try {
    client_->Close(session_);
  } catch (const std::exception& e) {
    CLINRL_LOG_WARN("remote env '{}': closing session {}: {}", env_name_,
                    session_, e.what());
  }
}

EnvSpec RemoteEnv::Spec() const {
  if (!spec_) spec_ = client_->Spec(env_name_);
  return *spec_;
}

ResetResult RemoteEnv::Reset(const ResetRequest& request) {
  ResetResult result;
  EnvReply reply =
      client_->Wait(client_->SubmitReset(env_name_, request, session_));
  session_ = reply.session;
  result.observation = std::move(reply.observation);
  result.info = std::move(reply.info);
  return result;
}

StepResult RemoteEnv::Step(const std::string& action) {
  if (session_.empty()) {
    throw BadRequest(
        fmt::format("remote env '{}': Step before Reset", env_name_));
  }
  return client_->Step(session_, action);
}

namespace {

// A policy that lives on the env server: each Act is one act request for
// the env's current session.
class ServerScriptedPolicy : public ScriptedPolicy {
 public:
  ServerScriptedPolicy(RemoteEnv& env, std::string policy, uint64_t seed,
                       json options)
      : env_(env),
        policy_(std::move(policy)),
        seed_(seed),
        options_(std::move(options)) {}

  std::string Act(const Observation& transcript, const json& info) override {
    if (env_.session().empty()) {
      throw BadRequest(
          fmt::format("scripted policy '{}': Act before Reset", policy_));
    }
    return env_.client().Act(env_.session(), policy_, seed_, options_,
                             transcript, info);
  }

 private:
  RemoteEnv& env_;
  std::string policy_;
  uint64_t seed_;
  json options_;
};

}  // namespace

std::unique_ptr<ScriptedPolicy> RemoteEnv::Policy(const std::string& policy,
                                                  uint64_t seed, json options) {
  const std::vector<std::string> policies = Spec().policies;
  if (std::find(policies.begin(), policies.end(), policy) == policies.end()) {
    throw NotFound(fmt::format(
        "env '{}' at {}: no scripted policy '{}'; its server plays: {}",
        env_name_, client_->endpoint(), policy,
        policies.empty() ? "(none)"
                         : fmt::format("{}", fmt::join(policies, ", "))));
  }
  return std::make_unique<ServerScriptedPolicy>(*this, policy, seed,
                                                std::move(options));
}

StepResult RemoteEnv::Truncate() {
  if (session_.empty()) {
    throw BadRequest(
        fmt::format("remote env '{}': Truncate before Reset", env_name_));
  }
  return client_->Truncate(session_);
}

}  // namespace clinrl::envs
