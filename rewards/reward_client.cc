#include "rewards/reward_client.h"

#include <algorithm>
#include <cstring>

#include "core/curve_auth.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"
#include "core/zmq_util.h"
#include "rewards/reward_wire.h"

namespace clinrl::rewards {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

[[noreturn]] void ThrowReplyError(const RewardReply& reply) {
  const std::string text =
      fmt::format("reward service: {}", reply.error_message);
  if (reply.error_code == "bad_request") throw BadRequest(text);
  if (reply.error_code == "not_found") throw NotFound(text);
  if (reply.error_code == "timeout") throw Timeout(text);
  if (reply.error_code == "disconnected") throw IoError(text);
  throw InternalError(text);
}

void FillReply(RewardReply* reply, const char* data, size_t size) {
  json body = json::parse(data, data + size, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("ok") ||
      !body["ok"].is_boolean()) {
    reply->ok = false;
    reply->error_code = "internal";
    reply->error_message = "reply is not a JSON object with a boolean \"ok\"";
    return;
  }
  reply->ok = body["ok"].get<bool>();
  if (!reply->ok) {
    const json& e = body.value("error", json::object());
    reply->error_code = e.value("code", "internal");
    reply->error_message = e.value("message", "(no message)");
  } else {
    try {
      if (body.contains("results")) {
        const json& list = body["results"];
        for (size_t i = 0; i < list.size(); ++i) {
          reply->results.push_back(RewardResultFromJson(
              list[i], fmt::format("reply.results[{}]", i)));
          reply->flagged.push_back(list[i].value("flagged", false));
        }
      } else if (body.contains("components")) {
        reply->results.push_back(RewardResultFromJson(body, "reply"));
        reply->flagged.push_back(body.value("flagged", false));
      }
    } catch (const Error& e) {
      reply->ok = false;
      reply->error_code = "internal";
      reply->error_message = e.what();
    }
  }
  reply->body = std::move(body);
}

}  // namespace

RewardClient::RewardClient(RewardClientOptions options)
    : options_(std::move(options)) {
  CheckEndpoint(options_.endpoint, "reward client endpoint");
  if (options_.request_timeout_ms < 1) {
    throw BadRequest(
        fmt::format("reward client request_timeout_ms: expected >= 1, got {}",
                    options_.request_timeout_ms));
  }
  socket_ = ConnectDealer(
      options_.endpoint,
      fmt::format("connecting the reward client to \"{}\"", options_.endpoint));
  monitor_ = std::make_unique<ConnectionMonitor>(
      *socket_, fmt::format("the reward client of '{}'", options_.endpoint));
}

RewardClient::~RewardClient() = default;

RewardReply RewardClient::Disconnected(uint64_t id,
                                       const std::string& why) const {
  RewardReply reply;
  reply.request_id = id;
  reply.error_code = "disconnected";
  reply.error_message =
      fmt::format("the reward server at {} (role reward_server) {}{}{}",
                  options_.endpoint, why,
                  monitor_->handshake_failure().empty()
                      ? ""
                      : "; the connection's handshake failed: " +
                            monitor_->handshake_failure(),
                  CurveHint(options_.endpoint));
  return reply;
}

void RewardClient::FailIfDisconnected() {
  if (monitor_->Update() == 0 || pending_.empty()) return;
  for (const auto& [id, sent] : pending_) {
    ready_.push_back(
        Disconnected(id,
                     "dropped the connection (it exited or restarted) before "
                     "answering"));
  }
  pending_.clear();
}

uint64_t RewardClient::Send(const std::string& body) {
  const uint64_t id = next_id_++;
  FailIfDisconnected();
  if (monitor_->lost()) {
    // Sent now, it would wait for a server that may never come back.
    ready_.push_back(Disconnected(
        id,
        "is gone (it exited or is restarting); the request was not "
        "sent"));
    return id;
  }
  try {
    // [request id][empty delimiter][body]: the server's REP workers return
    // everything before the delimiter untouched, so the id comes back.
    socket_->send(zmq::buffer(&id, sizeof(id)), zmq::send_flags::sndmore);
    socket_->send(zmq::message_t(), zmq::send_flags::sndmore);
    socket_->send(zmq::buffer(body), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, fmt::format("sending a reward request to \"{}\"",
                                 options_.endpoint));
  }
  pending_.emplace(id, Clock::now());
  return id;
}

uint64_t RewardClient::SubmitScore(const Trajectory& trajectory) {
  return Send(EncodeScoreRequest(trajectory));
}

uint64_t RewardClient::SubmitScoreGroup(const std::vector<Trajectory>& group) {
  std::string body = "{\"op\":\"score_group\",\"trajectories\":[";
  for (size_t i = 0; i < group.size(); ++i) {
    if (i > 0) body.push_back(',');
    AppendTrajectoryJson(group[i], &body);
  }
  body.append("]}");
  return Send(body);
}

uint64_t RewardClient::SubmitHealth() {
  return Send(json{{"op", "health"}}.dump());
}

uint64_t RewardClient::SubmitRaw(const std::string& body) { return Send(body); }

void RewardClient::Drain(int64_t wait_ms) {
  zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                             monitor_->PollItem()};
  try {
    if (zmq::poll(items, 2, std::chrono::milliseconds(wait_ms)) == 0) return;
    for (;;) {
      std::vector<zmq::message_t> frames = ReceiveMultipart(*socket_);
      if (frames.empty()) break;
      if (frames.size() != 3 || frames[0].size() != sizeof(uint64_t)) {
        CLINRL_LOG_WARN("reward client: dropped a reply with {} frames",
                        frames.size());
        continue;
      }
      uint64_t id = 0;
      std::memcpy(&id, frames[0].data(), sizeof(id));
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;  // already timed out
      RewardReply reply;
      reply.request_id = id;
      reply.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             Clock::now() - it->second)
                             .count();
      pending_.erase(it);
      FillReply(&reply, static_cast<const char*>(frames[2].data()),
                frames[2].size());
      ready_.push_back(std::move(reply));
    }
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, fmt::format("receiving reward replies from \"{}\"",
                                 options_.endpoint));
  }
  // After the replies that came before a drop were read.
  FailIfDisconnected();
}

void RewardClient::ExpireTimedOut() {
  const auto now = Clock::now();
  const auto limit = std::chrono::milliseconds(options_.request_timeout_ms);
  while (!pending_.empty() && now - pending_.begin()->second >= limit) {
    RewardReply reply;
    reply.request_id = pending_.begin()->first;
    reply.ok = false;
    reply.error_code = "timeout";
    reply.error_message =
        fmt::format("no reply from {} within {} ms{}", options_.endpoint,
                    options_.request_timeout_ms, CurveHint(options_.endpoint));
    reply.latency_us = options_.request_timeout_ms * 1000;
    pending_.erase(pending_.begin());
    ready_.push_back(std::move(reply));
  }
}

std::vector<RewardReply> RewardClient::Collect(size_t min_replies,
                                               int64_t wait_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  Drain(0);
  ExpireTimedOut();
  while (ready_.size() < min_replies && !pending_.empty()) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    // Wake for the earlier of the caller's deadline and the next expiry.
    auto until = std::min(
        deadline, pending_.begin()->second +
                      std::chrono::milliseconds(options_.request_timeout_ms));
    const int64_t ms = std::max<int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(until - now)
               .count());
    Drain(ms);
    ExpireTimedOut();
  }
  std::vector<RewardReply> out(std::make_move_iterator(ready_.begin()),
                               std::make_move_iterator(ready_.end()));
  ready_.clear();
  return out;
}

RewardReply RewardClient::Wait(uint64_t request_id) {
  for (;;) {
    for (auto it = ready_.begin(); it != ready_.end(); ++it) {
      if (it->request_id == request_id) {
        RewardReply reply = std::move(*it);
        ready_.erase(it);
        if (!reply.ok) ThrowReplyError(reply);
        return reply;
      }
    }
    CLINRL_CHECK(pending_.count(request_id),
                 "reward client: request {} is neither in flight nor ready",
                 request_id);
    Drain(10);
    ExpireTimedOut();
  }
}

RewardResult RewardClient::Score(const Trajectory& trajectory) {
  RewardReply reply = Wait(SubmitScore(trajectory));
  if (reply.results.size() != 1) {
    throw InternalError(
        fmt::format("reward service: score reply holds {} results, expected 1",
                    reply.results.size()));
  }
  return std::move(reply.results[0]);
}

std::vector<RewardResult> RewardClient::ScoreGroup(
    const std::vector<Trajectory>& group) {
  RewardReply reply = Wait(SubmitScoreGroup(group));
  if (reply.results.size() != group.size()) {
    throw InternalError(
        fmt::format("reward service: score_group reply holds {} results for {} "
                    "trajectories",
                    reply.results.size(), group.size()));
  }
  return std::move(reply.results);
}

nlohmann::json RewardClient::Health() { return Wait(SubmitHealth()).body; }

}  // namespace clinrl::rewards
