#include "rollout/rollout_service.h"

#include <algorithm>
#include <chrono>
#include <zmq.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"
#include "core/zmq_util.h"
#include "distributed/heartbeat.h"
#include "distributed/weight_subscriber.h"
#include "envs/env_pool.h"
#include "policy/model_dir.h"
#include "rewards/plugin_loader.h"
#include "rewards/trajectory_scorer.h"
#include "rollout/rollout_wire.h"
#include "rollout/rollout_worker.h"

namespace clinrl::rollout {

using nlohmann::json;

struct RolloutService::State {
  ClinrlConfig config;
  RolloutServiceOptions options;
  std::unique_ptr<policy::Tokenizer> tokenizer;
  policy::Transformer model{nullptr};
  std::unique_ptr<envs::EnvRegistry> env_registry;  // outlives the pool
  std::unique_ptr<envs::EnvPool> pool;
  std::unique_ptr<envs::EnvClient> remote_env;
  envs::EnvClient* env = nullptr;
  // A reward server's client, or the composite reward in this process.
  std::unique_ptr<rewards::TrajectoryScorer> scorer;
  std::unique_ptr<RolloutWorker> worker;
  std::unique_ptr<distributed::WeightSubscriber> weights;
  std::unique_ptr<distributed::HeartbeatSender> heartbeat;
  std::unique_ptr<zmq::socket_t> socket;
  RolloutServiceStats stats;

  void BuildPolicy();
  void Send(const json& body);
  void CheckLearner() const;
  void ApplyNewestWeights(int64_t wait_ms);
  void PlayGroup(const WorkReply& work);
};

void RolloutService::State::BuildPolicy() {
  // The architecture and tokenizer are the learner's (same config); the
  // weights arrive from the learner before the first group is played.
  policy::PolicyModel policy =
      policy::LoadPolicy(config.policy, static_cast<uint64_t>(config.run.seed));
  model = policy.model;
  // Sampling in the learner's precision (trainer.precision), log-probs in
  // float32; the learner measures and corrects the mismatch.
  model->set_precision(
      policy::ParsePrecision(config.trainer.precision, "trainer.precision"));
  tokenizer = std::move(policy.tokenizer);
}

void RolloutService::State::Send(const json& body) {
  const std::string text = body.dump();
  try {
    if (!socket->send(zmq::buffer(text), zmq::send_flags::dontwait)) {
      throw IoError(fmt::format("rollout worker {}: the queue to {} is full",
                                options.worker_id, options.work_endpoint));
    }
  } catch (const zmq::error_t& e) {
    clinrl::ThrowZmqError(e,
                          "sending to the learner at " + options.work_endpoint);
  }
}

void RolloutService::State::CheckLearner() const {
  if (heartbeat->learner_lost()) {
    throw Timeout(fmt::format("rollout worker {}: {}", options.worker_id,
                              heartbeat->LostMessage()));
  }
}

void RolloutService::State::ApplyNewestWeights(int64_t wait_ms) {
  if (auto update = weights->Poll(wait_ms)) {
    distributed::LoadWeights(*model, *update);
    ++stats.weight_updates;
    CLINRL_LOG_DEBUG("rollout worker {}: weights version {}", options.worker_id,
                     update->version);
  }
}

void RolloutService::State::PlayGroup(const WorkReply& work) {
  // Sampling from weights older than the learner allows would only be
  // dropped: wait for a recent enough version first.
  while (weights->version() < work.min_version) {
    CheckLearner();
    if (heartbeat->stop_requested()) return;
    ApplyNewestWeights(100);
  }
  // The learner's current version is normally already on its way (published
  // just before this group was handed out): a short wait for it saves
  // training on lagged samples. Past the wait, any version >= min_version
  // will do; the learner corrects the lag with importance weights.
  const auto fresh_deadline = std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(options.heartbeat_ms);
  while (weights->version() < work.version &&
         std::chrono::steady_clock::now() < fresh_deadline) {
    ApplyNewestWeights(10);
  }
  const int64_t version = weights->version();

  ResultRequest result;
  result.worker = options.worker_id;
  result.key = work.group.key;
  std::vector<RolloutEpisode> episodes;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    episodes =
        worker->Run({work.group.task}, work.group.seed, version, &result.stats);
  }
  std::vector<Trajectory*> group;
  for (RolloutEpisode& e : episodes) group.push_back(&e.trajectory);
  // The episodes are one task's GRPO group: scored together, so that
  // group-level components see all of them.
  result.reward_seconds = rewards::ScoreByGroup(
      group, std::max<int64_t>(1, static_cast<int64_t>(group.size())), *scorer);
  for (RolloutEpisode& e : episodes) {
    result.episodes.push_back(std::move(e.trajectory));
  }
  Send(ResultRequestToJson(result));
  ++stats.groups;
}

RolloutService::RolloutService(const ClinrlConfig& config,
                               RolloutServiceOptions options)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.config = config;
  s.options = std::move(options);
  envs::CheckRunEnvs(s.config.envs);
  policy::SetComputeThreads(s.config.run.threads);
  rewards::LoadRewardPlugins(s.config.rewards.plugins);
  s.BuildPolicy();

  // --env-endpoint serves every env; else each entry's own endpoint, or
  // this process.
  envs::EnvConnection connection =
      envs::ConnectEnvs(s.config.envs, s.options.env_endpoint);
  s.env_registry = std::move(connection.registry);
  s.pool = std::move(connection.pool);
  s.remote_env = std::move(connection.remote);
  s.env = connection.client;
  RewardsConfig rewards_config = s.config.rewards;
  if (!s.options.reward_endpoint.empty()) {
    rewards_config.endpoint = s.options.reward_endpoint;
  }
  s.scorer = rewards::MakeTrajectoryScorer(rewards_config);
  s.worker = std::make_unique<RolloutWorker>(
      s.model, *s.tokenizer, *s.env,
      RolloutOptionsFromConfig(s.config.rollout));

  s.weights = std::make_unique<distributed::WeightSubscriber>(
      s.options.weights_endpoint);
  distributed::HeartbeatOptions hb;
  hb.endpoint = s.options.work_endpoint;
  hb.worker = s.options.worker_id;
  hb.role = "rollout";
  hb.interval_ms = s.options.heartbeat_ms;
  hb.misses = s.options.heartbeat_misses;
  hb.startup_grace_ms = s.options.startup_grace_ms;
  s.heartbeat = std::make_unique<distributed::HeartbeatSender>(hb);
  clinrl::CheckEndpoint(s.options.work_endpoint, "work endpoint");
  s.socket = clinrl::ConnectDealer(
      s.options.work_endpoint,
      "connecting to the learner at " + s.options.work_endpoint);
}

RolloutService::~RolloutService() = default;

RolloutServiceStats RolloutService::Run() {
  try {
    return Serve();
  } catch (const std::exception& e) {
    State& s = *s_;
    try {
      // Best effort: the learner may be gone too. A second of linger lets
      // the message leave before the socket closes.
      s.socket->set(zmq::sockopt::linger, 1000);
      s.Send({{"op", "failed"},
              {"worker", s.options.worker_id},
              {"error", e.what()}});
    } catch (const std::exception& report) {
      CLINRL_LOG_WARN("rollout worker {}: could not tell the learner: {}",
                      s.options.worker_id, report.what());
    }
    throw;
  }
}

RolloutServiceStats RolloutService::Serve() {
  State& s = *s_;
  const json work_request = WorkRequestToJson({s.options.worker_id});
  s.Send(work_request);
  while (true) {
    if (s.heartbeat->stop_requested()) break;
    s.CheckLearner();
    s.ApplyNewestWeights(0);
    std::string text;
    try {
      zmq::pollitem_t item{s.socket->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      if (!s.socket->recv(m, zmq::recv_flags::dontwait)) continue;
      text = m.to_string();
    } catch (const zmq::error_t& e) {
      clinrl::ThrowZmqError(
          e, "receiving from the learner at " + s.options.work_endpoint);
    }
    const json reply = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!reply.is_object()) {
      throw BadRequest(fmt::format(
          "rollout worker {}: the learner's reply is not a JSON object: {}",
          s.options.worker_id, text.substr(0, 200)));
    }
    wire::CheckReply(reply, "learner");
    const std::string op = wire::Fields(reply, "reply").String("op");
    if (op == "result") {
      const ResultReply result = ResultReplyFromJson(reply, "reply");
      if (!result.accepted) {
        CLINRL_LOG_INFO("rollout worker {}: group not used ({})",
                        s.options.worker_id, result.reason);
      }
      continue;
    }
    if (op != "work") continue;
    const WorkReply work = WorkReplyFromJson(reply, "reply");
    if (work.stop && !work.failure.empty()) {
      throw IoError(
          fmt::format("rollout worker {}: the learner's run failed: {}",
                      s.options.worker_id, work.failure));
    }
    if (work.stop) break;
    s.PlayGroup(work);
    s.Send(work_request);
  }
  CLINRL_LOG_INFO(
      "rollout worker {}: the learner ended the run after {} "
      "groups",
      s.options.worker_id, s.stats.groups);
  return s.stats;
}

}  // namespace clinrl::rollout
