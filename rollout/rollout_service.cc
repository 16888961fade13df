#include "rollout/rollout_service.h"

#include <chrono>
#include <zmq.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/monotonic_clock.h"
#include "core/wire.h"
#include "core/zmq_util.h"
#include "distributed/heartbeat.h"
#include "distributed/weight_subscriber.h"
#include "envs/env_pool.h"
#include "policy/model_dir.h"
#include "rewards/composite_reward.h"
#include "rewards/plugin_loader.h"
#include "rewards/reward_client.h"
#include "rollout/rollout_worker.h"

namespace clinrl::rollout {

using nlohmann::json;

struct RolloutService::State {
  ClinrlConfig config;
  RolloutServiceOptions options;
  std::unique_ptr<policy::Tokenizer> tokenizer;
  policy::Transformer model{nullptr};
  std::unique_ptr<envs::EnvPool> pool;
  std::unique_ptr<envs::EnvClient> remote_env;
  envs::EnvClient* env = nullptr;
  std::unique_ptr<rewards::RewardClient> reward;
  std::unique_ptr<RolloutWorker> worker;
  std::unique_ptr<distributed::WeightSubscriber> weights;
  std::unique_ptr<distributed::HeartbeatSender> heartbeat;
  std::unique_ptr<zmq::socket_t> socket;
  RolloutServiceStats stats;

  void BuildPolicy();
  void Send(const json& body);
  void CheckLearner() const;
  void ApplyNewestWeights(int64_t wait_ms);
  void PlayGroup(const json& group, int64_t min_version,
                 int64_t current_version);
};

void RolloutService::State::BuildPolicy() {
  // The architecture and tokenizer are the learner's (same config); the
  // weights arrive from the learner before the first group is played.
  const PolicyConfig& pc = config.policy;
  if (!pc.model_dir.empty()) {
    policy::ModelLoadOptions load;
    load.dtype = pc.dtype;
    load.device = pc.device;
    model = policy::LoadModel(pc.model_dir, load);
    tokenizer = policy::LoadModelTokenizer(pc.model_dir);
    return;
  }
  if (!pc.init.is_object()) {
    throw ConfigError(
        "policy: expected either policy.model_dir or a policy.init object "
        "(a Hugging Face config.json)");
  }
  tokenizer = policy::LoadTokenizer(pc.tokenizer);
  json init = pc.init;
  if (!init.contains("vocab_size")) init["vocab_size"] = tokenizer->size();
  model = policy::Transformer(policy::TransformerOptions(
      policy::ModelConfig::FromJson(init, "policy.init")));
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

void RolloutService::State::PlayGroup(const json& group, int64_t min_version,
                                      int64_t current_version) {
  const wire::Fields g(group, "reply.group");
  // Sampling from weights older than the learner allows would only be
  // dropped: wait for a recent enough version first.
  while (weights->version() < min_version) {
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
  while (weights->version() < current_version &&
         std::chrono::steady_clock::now() < fresh_deadline) {
    ApplyNewestWeights(10);
  }
  TaskRef task;
  task.env = g.String("env");
  task.split = g.String("split");
  task.task_index = g.Int("task_index");
  task.options = g.Has("options") ? g.Object("options") : json::object();
  const uint64_t seed = g.Get("seed").get<uint64_t>();
  const int64_t version = weights->version();

  RolloutStats rstats;
  std::vector<RolloutEpisode> episodes;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    episodes = worker->Run({task}, seed, version, &rstats);
  }
  const double reward_start = MonotonicSeconds();
  std::vector<size_t> members;
  std::vector<Trajectory> scored_group;
  for (size_t i = 0; i < episodes.size(); ++i) {
    // No reward spec: the reset failed; the episode scores 0.
    if (episodes[i].trajectory.reward_spec.contains("components")) {
      members.push_back(i);
      scored_group.push_back(episodes[i].trajectory);
    }
  }
  if (!scored_group.empty()) {
    const std::vector<RewardResult> scores =
        reward ? reward->ScoreGroup(scored_group)
               : rewards::ScoreGroup(scored_group, {config.rewards.timeout_ms});
    for (size_t k = 0; k < members.size(); ++k) {
      episodes[members[k]].trajectory.reward = scores[k];
    }
  }
  const double reward_seconds = MonotonicSeconds() - reward_start;
  json list = json::array();
  for (const RolloutEpisode& e : episodes) list.push_back(ToJson(e.trajectory));
  Send({{"op", "result"},
        {"worker", options.worker_id},
        {"key", g.String("key")},
        {"episodes", std::move(list)},
        {"stats",
         {{"seconds", rstats.seconds},
          {"generate_seconds", rstats.generate_seconds},
          {"env_seconds", rstats.env_seconds},
          {"generated_tokens", rstats.generated_tokens},
          {"prompt_tokens", rstats.prompt_tokens},
          {"cached_prompt_tokens", rstats.cached_prompt_tokens},
          {"rounds", rstats.rounds},
          {"episodes", rstats.episodes},
          {"reward_seconds", reward_seconds}}}});
  ++stats.groups;
}

RolloutService::RolloutService(const ClinrlConfig& config,
                               RolloutServiceOptions options)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.config = config;
  s.options = std::move(options);
  if (s.config.envs.empty()) {
    throw ConfigError("envs: expected at least one env entry (name, options)");
  }
  policy::SetComputeThreads(s.config.run.threads);
  rewards::LoadRewardPlugins(s.config.rewards.plugins);
  s.BuildPolicy();

  std::string env_endpoint = s.options.env_endpoint;
  if (env_endpoint.empty()) env_endpoint = s.config.envs.front().endpoint;
  if (env_endpoint.empty()) {
    envs::EnvPoolOptions pool;
    for (const EnvEntry& e : s.config.envs) {
      pool.service.envs.push_back(e.name);
      pool.service.env_options[e.name] = e.options;
    }
    s.pool = std::make_unique<envs::EnvPool>(pool);
    s.env = &s.pool->client();
  } else {
    envs::EnvClientOptions co;
    co.endpoint = env_endpoint;
    s.remote_env = std::make_unique<envs::EnvClient>(co);
    s.env = s.remote_env.get();
  }
  std::string reward_endpoint = s.options.reward_endpoint;
  if (reward_endpoint.empty()) reward_endpoint = s.config.rewards.endpoint;
  if (!reward_endpoint.empty()) {
    rewards::RewardClientOptions ro;
    ro.endpoint = reward_endpoint;
    s.reward = std::make_unique<rewards::RewardClient>(ro);
  }
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
  try {
    s.socket = std::make_unique<zmq::socket_t>(clinrl::SharedZmqContext(),
                                               zmq::socket_type::dealer);
    s.socket->set(zmq::sockopt::linger, 0);
    s.socket->connect(s.options.work_endpoint);
  } catch (const zmq::error_t& e) {
    clinrl::ThrowZmqError(
        e, "connecting to the learner at " + s.options.work_endpoint);
  }
}

RolloutService::~RolloutService() = default;

RolloutServiceStats RolloutService::Run() {
  State& s = *s_;
  const json work_request = {{"op", "work"}, {"worker", s.options.worker_id}};
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
    const wire::Fields f(reply, "reply");
    const std::string op = f.String("op");
    if (op == "result") {
      if (!f.Bool("accepted", true)) {
        CLINRL_LOG_INFO("rollout worker {}: group not used ({})",
                        s.options.worker_id, f.String("reason", ""));
      }
      continue;
    }
    if (op != "work") continue;
    if (f.Bool("stop", false)) break;
    const int64_t min_version = f.Int("min_version", 0);
    s.PlayGroup(f.Object("group"), min_version, f.Int("version", min_version));
    s.Send(work_request);
  }
  CLINRL_LOG_INFO(
      "rollout worker {}: the learner ended the run after {} "
      "groups",
      s.options.worker_id, s.stats.groups);
  return s.stats;
}

}  // namespace clinrl::rollout
