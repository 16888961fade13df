#include "envs/remote_env.h"

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

StepResult RemoteEnv::Truncate() {
  if (session_.empty()) {
    throw BadRequest(
        fmt::format("remote env '{}': Truncate before Reset", env_name_));
  }
  return client_->Truncate(session_);
}

}  // namespace clinrl::envs
