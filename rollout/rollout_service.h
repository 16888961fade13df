// A rollout worker process of a distributed run (docs/distributed.md): takes
// task groups from learner rank 0, plays each with RolloutWorker against an
// env server (or the config's envs in-process), scores it through a reward
// server (or in-process), and sends the trajectories back tagged with the
// policy version that sampled them. Weights arrive through a
// WeightSubscriber; before playing a group the worker waits for a version at
// least as new as the group's min_version, so the learner's staleness bound
// holds by construction. A heartbeat thread keeps the learner informed and
// notices when the learner is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/clinrl_config.h"

namespace clinrl::rollout {

struct RolloutServiceOptions {
  std::string worker_id = "rollout-0";
  std::string work_endpoint;     // the learner's (connect)
  std::string weights_endpoint;  // the learner's (connect)
  // "" = the config's envs: envs[0].endpoint, or an in-process pool.
  std::string env_endpoint;
  std::string reward_endpoint;  // "" = score in this process
  int64_t heartbeat_ms = 1000;
  int64_t heartbeat_misses = 3;
  int64_t startup_grace_ms = 120000;  // for the learner's first answer
};

struct RolloutServiceStats {
  int64_t groups = 0;
  int64_t weight_updates = 0;
};

class RolloutService {
 public:
  // Builds the policy (architecture and tokenizer from config.policy; the
  // weights come from the learner) and the env and reward clients.
  RolloutService(const ClinrlConfig& config, RolloutServiceOptions options);
  ~RolloutService();

  // Plays task groups until the learner says stop. Throws Timeout naming
  // the learner's endpoint when it stops answering (it died or hung). Any
  // error is first reported to the learner ({"op": "failed"}), so a run
  // left without rollout workers stops at once saying why.
  RolloutServiceStats Run();

 private:
  RolloutServiceStats Serve();

  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace clinrl::rollout
