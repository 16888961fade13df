#include "rewards/reward_server.h"

#include "core/curve_auth.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"
#include "core/zmq_util.h"
#include "rewards/reward_registry.h"
#include "rewards/reward_wire.h"

namespace clinrl::rewards {

namespace {

using json = nlohmann::json;

// TrajectoryFromJson copies reward_spec and info, and a spec holding a whole
// rubric costs more to copy than to score: move them out of the request.
Trajectory TakeTrajectory(json* j, const std::string& path) {
  json spec = json::object();
  json info = json::object();
  if (j->is_object()) {
    for (auto [key, target] :
         {std::pair<const char*, json*>{"reward_spec", &spec},
          {"info", &info}}) {
      auto it = j->find(key);
      if (it == j->end() || it->is_null()) continue;
      if (!it->is_object()) {
        throw BadRequest(fmt::format("{}.{}: expected an object, got {}", path,
                                     key, it->type_name()));
      }
      *target = std::move(*it);
      j->erase(it);
    }
  }
  Trajectory t = TrajectoryFromJson(*j);
  t.reward_spec = std::move(spec);
  t.info = std::move(info);
  return t;
}

json ScoreOne(json* trajectory_json, const std::string& path,
              const ScoreOptions& options, RewardServerStats* stats) {
  auto trajectory =
      std::make_shared<const Trajectory>(TakeTrajectory(trajectory_json, path));
  const RewardResult result = ScoreTrajectory(trajectory, options);
  if (stats != nullptr) {
    stats->scored++;
    if (IsFlagged(result)) stats->flagged++;
  }
  return RewardResultToJson(result);
}

}  // namespace

json HandleRewardRequest(json request, const ScoreOptions& options,
                         RewardServerStats* stats) {
  if (stats != nullptr) stats->requests++;
  json reply;
  try {
    const wire::Fields f(request, "request");
    const std::string op = f.String("op");
    if (op == "score") {
      f.Object("trajectory");  // type check with a clear error
      reply = wire::OkReply(ScoreOne(&request["trajectory"],
                                     "request.trajectory", options, stats));
    } else if (op == "score_group") {
      f.Array("trajectories");
      json& list = request["trajectories"];
      std::vector<Trajectory> group;
      group.reserve(list.size());
      for (size_t i = 0; i < list.size(); ++i) {
        group.push_back(TakeTrajectory(
            &list[i], fmt::format("request.trajectories[{}]", i)));
      }
      const auto results = ScoreGroup(
          std::make_shared<const std::vector<Trajectory>>(std::move(group)),
          options);
      json out = json::array();
      for (const auto& r : results) {
        if (stats != nullptr) {
          stats->scored++;
          if (IsFlagged(r)) stats->flagged++;
        }
        out.push_back(RewardResultToJson(r));
      }
      reply = wire::OkReply({{"results", std::move(out)}});
    } else if (op == "health") {
      reply = wire::OkReply();
      if (stats != nullptr) {
        reply["requests"] = stats->requests.load();
        reply["scored"] = stats->scored.load();
        reply["flagged"] = stats->flagged.load();
        reply["errors"] = stats->errors.load();
        reply["uptime_s"] =
            std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                          stats->started)
                .count();
      }
    } else if (op == "plugins") {
      reply = wire::OkReply({{"plugins", RewardRegistry::Global().Names()}});
    } else {
      throw BadRequest(fmt::format(
          "request.op: expected one of score, score_group, health, plugins, "
          "got \"{}\"",
          op));
    }
  } catch (const Error& e) {
    reply = wire::ErrorReply(e.code(), e.what());
  } catch (const std::exception& e) {
    reply = wire::ErrorReply("internal", e.what());
  }
  if (stats != nullptr && !reply.value("ok", false)) stats->errors++;
  // Clients that multiplex without envelopes match replies by "id".
  if (request.is_object()) {
    auto id = request.find("id");
    if (id != request.end()) reply["id"] = *id;
  }
  return reply;
}

std::string HandleRewardMessage(const std::string& bytes,
                                const ScoreOptions& options,
                                RewardServerStats* stats) {
  json request = json::parse(bytes, nullptr, false);
  if (request.is_discarded()) {
    if (stats != nullptr) {
      stats->requests++;
      stats->errors++;
    }
    return wire::ErrorReply("bad_request",
                            fmt::format("request: not valid JSON ({} bytes: "
                                        "\"{}\")",
                                        bytes.size(), bytes.substr(0, 60)))
        .dump();
  }
  // Replies carry plug-in details, which may hold any bytes a plug-in
  // produced: replace invalid UTF-8 rather than throw while serialising.
  return HandleRewardRequest(std::move(request), options, stats)
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

RewardServer::RewardServer(RewardServerOptions options)
    : options_(std::move(options)),
      stats_(std::make_unique<RewardServerStats>()) {
  CheckEndpoint(options_.endpoint, "reward server endpoint");
  if (options_.workers < 1) {
    throw BadRequest(fmt::format(
        "rewards.workers: expected an integer >= 1, got {}", options_.workers));
  }
  zmq::context_t& context = SharedZmqContext();
  backend_endpoint_ = UniqueInprocEndpoint("clinrl-reward-workers");
  control_endpoint_ = UniqueInprocEndpoint("clinrl-reward-control");
  try {
    front_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::router);
    front_->set(zmq::sockopt::linger, 0);
    front_->set(zmq::sockopt::sndhwm, 0);
    front_->set(zmq::sockopt::rcvhwm, 0);
    SecureServerSocket(*front_, options_.endpoint,
                       fmt::format("reward server on '{}'", options_.endpoint));
    front_->bind(options_.endpoint);
    endpoint_ = front_->get(zmq::sockopt::last_endpoint);
    back_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    back_->set(zmq::sockopt::linger, 0);
    back_->set(zmq::sockopt::sndhwm, 0);
    back_->set(zmq::sockopt::rcvhwm, 0);
    back_->bind(backend_endpoint_);
    control_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
    control_->bind(control_endpoint_);
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, fmt::format("binding the reward server to \"{}\"",
                                 options_.endpoint));
  }
  // Workers connect before the proxy runs so none of the first requests is
  // queued to nobody.
  for (int64_t i = 0; i < options_.workers; ++i) {
    workers_.emplace_back(&RewardServer::WorkerLoop, this);
  }
  proxy_ = std::thread([this] {
    try {
      zmq::proxy_steerable(*front_, *back_, zmq::socket_ref(), *control_);
    } catch (const zmq::error_t& e) {
      if (!stopping_)
        CLINRL_LOG_ERROR("reward server proxy stopped: {}", e.what());
    }
  });
  CLINRL_LOG_INFO("reward server on {} with {} workers, {} ms per component",
                  endpoint_, options_.workers, options_.timeout_ms);
}

RewardServer::~RewardServer() { Stop(); }

void RewardServer::Stop() {
  if (stopping_.exchange(true)) return;
  try {
    zmq::socket_t bell(SharedZmqContext(), zmq::socket_type::pair);
    bell.set(zmq::sockopt::linger, 1000);
    bell.connect(control_endpoint_);
    bell.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    CLINRL_LOG_ERROR("stopping the reward server on {}: {}", endpoint_,
                     e.what());
  }
  if (proxy_.joinable()) proxy_.join();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  front_.reset();
  back_.reset();
  control_.reset();
}

void RewardServer::WorkerLoop() {
  ScoreOptions score_options;
  score_options.timeout_ms = options_.timeout_ms;
  zmq::socket_t socket(SharedZmqContext(), zmq::socket_type::rep);
  try {
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(backend_endpoint_);
  } catch (const zmq::error_t& e) {
    CLINRL_LOG_ERROR("reward worker cannot connect to {}: {}",
                     backend_endpoint_, e.what());
    return;
  }
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  while (!stopping_) {
    try {
      // Wake up now and then to notice Stop().
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
      zmq::message_t request;
      if (!socket.recv(request, zmq::recv_flags::dontwait)) continue;
      std::string reply;
      try {
        reply = HandleRewardMessage(request.to_string(), score_options,
                                    stats_.get());
      } catch (const std::exception& e) {
        // A REP socket that received must send, or it is wedged for good.
        reply = wire::ErrorReply("internal", e.what()).dump();
      }
      socket.send(zmq::buffer(reply), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      if (stopping_) break;
      // One lost message, not a dead worker.
      CLINRL_LOG_ERROR("reward worker ZeroMQ error: {}", e.what());
    } catch (const std::exception& e) {
      CLINRL_LOG_ERROR("reward worker: {}", e.what());
    }
  }
}

}  // namespace clinrl::rewards
