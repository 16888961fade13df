// Several learner ranks (docs/distributed.md, "Roles and endpoints"):
// learner rank 0 runs the training loop (rollouts, advantages, evaluation,
// metrics, checkpoints) and, before each optimizer step, broadcasts the
// step's global batch; every learner rank, rank 0 included, then trains on
// its share (BatchShare) through the data-parallel PolicyTrainer, whose
// gradients are reduce-scattered and whose AdamW moments are sharded
// (ZeRO-1; ZeRO-3 shards the parameters too, trainer.sharding). The other ranks
// run LearnerFollower: they only obey rank 0's commands, in the same order, so
// every collective matches.
//
// Commands (a JSON header through BroadcastBytes, tensors through
// Broadcast): stage (weights, KL reference and optimizer state for the
// next stage), sft / grpo (a batch), checkpoint (write this rank's
// shard), done.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/clinrl_config.h"
#include "distributed/communicator.h"
#include "policy/transformer.h"
#include "trainer/policy_trainer.h"

namespace clinrl::trainer {

// The trainer options of a stage ("sft" or "grpo") from the config, shared
// by learner rank 0 and the followers so that their updates agree.
PolicyTrainerOptions StageTrainerOptions(const ClinrlConfig& config,
                                         const std::string& stage);

// Rank 0's side of the command channel.
class LearnerGroup {
 public:
  explicit LearnerGroup(distributed::Communicator& comm) : comm_(comm) {}

  distributed::Communicator& comm() { return comm_; }
  // Starts `stage`: sends the model's architecture and weights (and the KL
  // reference when given) and the checkpoint to restore the optimizer from
  // ("" = fresh).
  void StartStage(const std::string& stage, policy::Transformer& model,
                  policy::Transformer reference, const std::string& resume_dir);
  // Sends the global batch; returns rank 0's share of it.
  std::vector<TrainSequence> SendBatch(const std::string& stage,
                                       const std::vector<TrainSequence>& batch,
                                       int64_t policy_version);
  // Asks every rank to write its optimizer shard of checkpoint `step`.
  void Checkpoint(const std::string& checkpoints_dir, int64_t step);
  void Done();

 private:
  void Send(nlohmann::json header);
  distributed::Communicator& comm_;
};

// A learner rank other than 0: obeys rank 0's commands until done.
void RunLearnerFollower(const ClinrlConfig& config,
                        distributed::Communicator& comm);

}  // namespace clinrl::trainer
