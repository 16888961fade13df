#include "envs/env_client.h"

#include <cstring>

#include "core/curve_auth.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"
#include "core/zmq_util.h"

namespace clinrl::envs {

namespace {

using Clock = std::chrono::steady_clock;

int64_t MicrosSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t)
      .count();
}

[[noreturn]] void ThrowReplyError(const EnvReply& reply) {
  const std::string text = fmt::format(
      "env {} ({}): {}", EnvOpName(reply.op),
      reply.session.empty() ? reply.env : reply.session, reply.error_message);
  if (reply.error_code == "bad_request") throw BadRequest(text);
  if (reply.error_code == "not_found") throw NotFound(text);
  if (reply.error_code == "timeout") throw Timeout(text);
  if (reply.error_code == "disconnected") throw IoError(text);
  throw InternalError(text);
}

// Moves reply.info out of the body instead of copying it: on the step path
// it is most of the reply.
void TakeInfo(EnvReply& r) {
  auto it = r.body.find("info");
  if (it == r.body.end() || it->is_null()) return;
  if (!it->is_object()) {
    throw BadRequest(
        fmt::format("reply.info: expected an object, got {}", it->type_name()));
  }
  r.info = std::move(*it);
  *it = nullptr;
}

// What the connection's handshake and CURVE may have to do with a silent or
// dropped server, for the error message ("" over ipc:// and inproc://).
std::string CurveDiagnosis(const ConnectionMonitor& monitor,
                           const std::string& endpoint) {
  const std::string failure = monitor.handshake_failure();
  return (failure.empty() ? ""
                          : "; the connection's handshake failed: " + failure) +
         CurveHint(endpoint);
}

}  // namespace

const char* EnvOpName(EnvOp op) {
  switch (op) {
    case EnvOp::kSpec:
      return "spec";
    case EnvOp::kReset:
      return "reset";
    case EnvOp::kStep:
      return "step";
    case EnvOp::kTruncate:
      return "truncate";
    case EnvOp::kClose:
      return "close";
    case EnvOp::kHealth:
      return "health";
    case EnvOp::kAct:
      return "act";
  }
  return "?";
}

EnvClient::EnvClient(EnvClientOptions options) : options_(std::move(options)) {
  CheckEndpoint(options_.endpoint, "env client endpoint");
  if (options_.request_timeout_ms < 1) {
    throw BadRequest(fmt::format(
        "env client request_timeout_ms: got {}, expected at least 1",
        options_.request_timeout_ms));
  }
  Connect();
}

EnvClient::~EnvClient() = default;

void EnvClient::Connect() {
  socket_ = ConnectDealer(
      options_.endpoint,
      fmt::format("connecting env client to '{}'", options_.endpoint));
  monitor_ = std::make_unique<ConnectionMonitor>(
      *socket_, fmt::format("the env client of '{}'", options_.endpoint));
}

void EnvClient::FailInFlight(const std::string& code,
                             const std::string& message) {
  for (auto& [id, p] : pending_) {
    EnvReply reply;
    reply.request_id = id;
    reply.op = p.op;
    reply.session = std::move(p.session);
    reply.env = std::move(p.env);
    reply.latency_us = MicrosSince(p.sent);
    reply.session_lost = !reply.session.empty();
    reply.error_code = code;
    reply.error_message = message;
    ready_.push_back(std::move(reply));
  }
  pending_.clear();
}

void EnvClient::Reconnect() {
  FailInFlight("timeout", "dropped by a client reconnect");
  monitor_.reset();
  socket_.reset();
  Connect();
}

uint64_t EnvClient::Send(EnvOp op, const json& request, std::string session,
                         std::string env) {
  const uint64_t id = next_id_++;
  CheckConnection();
  if (monitor_->lost()) {
    // Sent now, it would wait for a server that may never come back, or
    // reach a restarted one that knows none of this client's sessions.
    EnvReply reply;
    reply.request_id = id;
    reply.op = op;
    reply.session = std::move(session);
    reply.env = std::move(env);
    reply.session_lost = !reply.session.empty();
    reply.error_code = "disconnected";
    reply.error_message = fmt::format(
        "the env server at {} is gone (it exited or is restarting, or "
        "refused the connection); the request was not sent{}",
        options_.endpoint, CurveDiagnosis(*monitor_, options_.endpoint));
    ready_.push_back(std::move(reply));
    return id;
  }
  // Agent text may hold invalid UTF-8 (a sample cut inside a multi-byte
  // character): it travels with U+FFFD in place of the bad bytes.
  const std::string body =
      request.dump(-1, ' ', false, json::error_handler_t::replace);
  try {
    socket_->send(zmq::buffer(&id, sizeof(id)), zmq::send_flags::sndmore);
    socket_->send(zmq::message_t(), zmq::send_flags::sndmore);
    socket_->send(zmq::buffer(body), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, fmt::format("sending env {} to '{}'", EnvOpName(op),
                                 options_.endpoint));
  }
  pending_.emplace(
      id, Pending{op, std::move(session), std::move(env), Clock::now()});
  return id;
}

uint64_t EnvClient::SubmitSpec(const std::string& env) {
  return Send(EnvOp::kSpec, {{"op", "spec"}, {"env", env}}, "", env);
}

uint64_t EnvClient::SubmitReset(const std::string& env,
                                const ResetRequest& request,
                                const std::string& session) {
  json j = {{"op", "reset"},
            {"env", env},
            {"split", request.split},
            {"options", request.options}};
  if (request.task_index) j["task_index"] = *request.task_index;
  if (request.seed) j["seed"] = *request.seed;
  if (!session.empty()) j["session"] = session;
  return Send(EnvOp::kReset, j, session, env);
}

uint64_t EnvClient::SubmitStep(const std::string& session,
                               const std::string& action) {
  return Send(EnvOp::kStep,
              {{"op", "step"}, {"session", session}, {"action", action}},
              session, "");
}

uint64_t EnvClient::SubmitTruncate(const std::string& session) {
  return Send(EnvOp::kTruncate, {{"op", "truncate"}, {"session", session}},
              session, "");
}

uint64_t EnvClient::SubmitClose(const std::string& session) {
  return Send(EnvOp::kClose, {{"op", "close"}, {"session", session}}, session,
              "");
}

uint64_t EnvClient::SubmitHealth() {
  return Send(EnvOp::kHealth, {{"op", "health"}}, "", "");
}

uint64_t EnvClient::SubmitAct(const std::string& session,
                              const std::string& policy, uint64_t seed,
                              const json& options,
                              const Observation& transcript, const json& info) {
  return Send(EnvOp::kAct,
              {{"op", "act"},
               {"session", session},
               {"policy", policy},
               {"seed", seed},
               {"options", options},
               {"transcript", ToJson(transcript)},
               {"info", info}},
              session, "");
}

EnvReply EnvClient::Complete(uint64_t id, Pending p, const char* data,
                             size_t size) {
  EnvReply r;
  r.request_id = id;
  r.op = p.op;
  r.session = std::move(p.session);
  r.env = std::move(p.env);
  r.latency_us = MicrosSince(p.sent);
  try {
    r.body = json::parse(data, data + size);
    wire::Fields f(r.body, "reply");
    r.ok = f.Bool("ok");
    if (!r.ok) {
      const wire::Fields e(f.Object("error"), "reply.error");
      r.error_code = e.String("code");
      r.error_message = e.String("message", "");
      // not_found on a session: the server no longer has it.
      r.session_lost = r.error_code == "not_found" && !r.session.empty();
      return r;
    }
    if (r.op == EnvOp::kReset) {
      r.session = f.String("session");
      r.observation =
          ObservationFromJson(f.Get("observation"), "reply.observation");
      TakeInfo(r);
    } else if (r.op == EnvOp::kStep || r.op == EnvOp::kTruncate) {
      r.observation =
          ObservationFromJson(f.Get("observation"), "reply.observation");
      r.reward = f.Double("reward");
      r.terminated = f.Bool("terminated");
      r.truncated = f.Bool("truncated");
      TakeInfo(r);
    }
  } catch (const std::exception& e) {
    // A reply this client cannot read is the server's fault, not the
    // caller's: it completes as an internal error and the loop goes on.
    r.ok = false;
    r.error_code = "internal";
    r.error_message = fmt::format("unreadable reply: {}", e.what());
  }
  return r;
}

void EnvClient::Drain() {
  while (true) {
    std::vector<zmq::message_t> frames;
    try {
      frames = ReceiveMultipart(*socket_);
    } catch (const zmq::error_t& e) {
      ThrowZmqError(e, fmt::format("receiving from '{}'", options_.endpoint));
    }
    if (frames.empty()) return;
    if (frames.size() != 3 || frames[0].size() != sizeof(uint64_t)) {
      CLINRL_LOG_WARN("env client: dropped a reply with {} frames from {}",
                      frames.size(), options_.endpoint);
      continue;
    }
    uint64_t id = 0;
    std::memcpy(&id, frames[0].data(), sizeof(id));
    auto it = pending_.find(id);
    // A late reply to a request already reported as timed out.
    if (it == pending_.end()) continue;
    Pending p = std::move(it->second);
    pending_.erase(it);
    ready_.push_back(Complete(id, std::move(p),
                              static_cast<const char*>(frames[2].data()),
                              frames[2].size()));
  }
}

void EnvClient::Poll(int64_t wait_ms) {
  zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                             monitor_->PollItem()};
  try {
    zmq::poll(items, 2, std::chrono::milliseconds(wait_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) ThrowZmqError(e, "polling the env client socket");
  }
  Drain();
  CheckConnection();
  ExpireTimedOut();
}

void EnvClient::CheckConnection() {
  // Every disconnect event is acted on where it is read, or it would be
  // lost: what is still in flight, once the replies that came before the
  // drop are read, went down with the connection.
  if (monitor_->Update() > 0 && !pending_.empty()) {
    Drain();
    FailInFlight("disconnected",
                 fmt::format("the env server at {} dropped the connection (it "
                             "exited or restarted, or refused it) before "
                             "answering{}",
                             options_.endpoint,
                             CurveDiagnosis(*monitor_, options_.endpoint)));
  }
}

void EnvClient::ExpireTimedOut() {
  const auto now = Clock::now();
  const auto timeout = std::chrono::milliseconds(options_.request_timeout_ms);
  while (!pending_.empty() && now - pending_.begin()->second.sent >= timeout) {
    auto it = pending_.begin();
    EnvReply r;
    r.request_id = it->first;
    r.op = it->second.op;
    r.session = std::move(it->second.session);
    r.env = std::move(it->second.env);
    r.latency_us = MicrosSince(it->second.sent);
    r.session_lost = !r.session.empty();
    r.error_code = "timeout";
    r.error_message =
        fmt::format("no reply from {} within {} ms{}", options_.endpoint,
                    options_.request_timeout_ms,
                    CurveDiagnosis(*monitor_, options_.endpoint));
    pending_.erase(it);
    ready_.push_back(std::move(r));
  }
}

std::vector<EnvReply> EnvClient::Collect(size_t min_replies, int64_t wait_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  Poll(0);
  while (true) {
    if (ready_.size() >= min_replies || pending_.empty()) break;
    const auto now = Clock::now();
    if (now >= deadline) break;
    auto until = deadline;
    const auto expiry = pending_.begin()->second.sent +
                        std::chrono::milliseconds(options_.request_timeout_ms);
    if (expiry < until) until = expiry;
    Poll(std::chrono::duration_cast<std::chrono::milliseconds>(until - now)
             .count() +
         1);
  }
  std::vector<EnvReply> out(std::make_move_iterator(ready_.begin()),
                            std::make_move_iterator(ready_.end()));
  ready_.clear();
  return out;
}

EnvReply EnvClient::Wait(uint64_t request_id) {
  while (true) {
    for (auto it = ready_.begin(); it != ready_.end(); ++it) {
      if (it->request_id == request_id) {
        EnvReply r = std::move(*it);
        ready_.erase(it);
        if (!r.ok) ThrowReplyError(r);
        return r;
      }
    }
    CLINRL_CHECK(pending_.count(request_id) == 1,
                 "env client: request {} is neither in flight nor ready",
                 request_id);
    const auto expiry = pending_.begin()->second.sent +
                        std::chrono::milliseconds(options_.request_timeout_ms);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        expiry - Clock::now())
                        .count() +
                    1;
    Poll(std::max<int64_t>(ms, 0));
  }
}

EnvSpec EnvClient::Spec(const std::string& env) {
  EnvReply r = Wait(SubmitSpec(env));
  json fields = r.body;
  fields.erase("ok");
  return EnvSpecFromJson(fields);
}

std::string EnvClient::Reset(const std::string& env,
                             const ResetRequest& request, ResetResult* result) {
  EnvReply r = Wait(SubmitReset(env, request));
  if (result != nullptr) {
    result->observation = std::move(r.observation);
    result->info = std::move(r.info);
  }
  return r.session;
}

StepResult EnvClient::Step(const std::string& session,
                           const std::string& action) {
  return TakeStepResult(Wait(SubmitStep(session, action)));
}

StepResult EnvClient::Truncate(const std::string& session) {
  return TakeStepResult(Wait(SubmitTruncate(session)));
}

StepResult EnvClient::TakeStepResult(EnvReply r) {
  StepResult s;
  s.observation = std::move(r.observation);
  s.reward = r.reward;
  s.terminated = r.terminated;
  s.truncated = r.truncated;
  s.info = std::move(r.info);
  return s;
}

void EnvClient::Close(const std::string& session) {
  Wait(SubmitClose(session));
}

json EnvClient::Health() {
  EnvReply r = Wait(SubmitHealth());
  return std::move(r.body);
}

std::string EnvClient::Act(const std::string& session,
                           const std::string& policy, uint64_t seed,
                           const json& options, const Observation& transcript,
                           const json& info) {
  EnvReply r =
      Wait(SubmitAct(session, policy, seed, options, transcript, info));
  return wire::Fields(r.body, "reply").String("action");
}

}  // namespace clinrl::envs
