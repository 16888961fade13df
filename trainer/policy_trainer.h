// Optimisation of the policy on a batch of token sequences: GRPO updates
// (grpo_loss.h) and SFT updates share micro-batching with gradient
// accumulation, gradient clipping, AdamW and the LR schedule. The batch's
// loss is normalised over the whole batch (not per micro-batch), so the
// gradient does not depend on the micro-batch size.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "policy/precision.h"
#include "policy/transformer.h"
#include "trainer/adamw.h"
#include "trainer/grpo_loss.h"
#include "trainer/lr_schedule.h"
#include "trainer/non_finite.h"
#include "trainer/sharded_adamw.h"
#include "trainer/sharding.h"
#include "trainer/zero3.h"

namespace clinrl::trainer {

// One training sequence: the token ids of an episode, which positions are
// trained (policy tokens), and the sampling-time log-probs of those tokens.
struct TrainSequence {
  std::vector<int64_t> ids;
  std::vector<uint8_t> loss_mask;       // per position: 1 = trained token
  std::vector<float> rollout_logprobs;  // per position; 0 where masked
  double advantage = 0.0;               // GRPO: the sequence's advantage
  // Per position, replacing `advantage` when set (trainer.credit: turn, each
  // policy turn its own); empty = `advantage` on every position.
  std::vector<float> token_advantages;
  int64_t policy_version = 0;  // the weights that sampled it
};

struct PolicyTrainerOptions {
  int64_t micro_batch = 8;  // sequences per forward/backward
  // Recompute each decoder layer in backward (TransformerImpl::
  // set_activation_checkpointing): less memory, same gradients.
  bool activation_checkpointing = false;
  // bf16: the model (learner, reference and, where it shares the model,
  // rollouts) computes under bfloat16 autocast; parameters, gradients and
  // AdamW moments stay float32. The learner then always recomputes the
  // ratio's denominator, so the sampling/learner mismatch is measured
  // (mismatch/* metrics) and corrected by truncated importance weights.
  policy::Precision precision = policy::Precision::kFp32;
  // Pack whole sequences (first fit, longest first) into one row per pass,
  // within micro_batch x the batch's longest sequence tokens, each sequence
  // attending only to itself (the variable-length attention path): no
  // compute spent on padding.
  bool packing = false;
  int64_t epochs_per_batch = 1;  // optimizer steps per GRPO batch
  double grad_clip = 1.0;        // global norm; 0 = off
  // A non-finite loss or global gradient norm: the optimizer step is never
  // applied; kStop throws NonFiniteError, kSkip drops the gradients and
  // counts the step (metric train/non_finite_skipped).
  NonFinitePolicy non_finite = NonFinitePolicy::kStop;
  LrSchedule schedule;
  AdamWOptions adamw;
  GrpoLossOptions loss;
  // Recompute the ratio's denominator with the current weights before the
  // update (as verl does). Needed for several epochs per batch or stale
  // samples; when off, the sampling-time log-probs are the denominator.
  bool recompute_old_logprobs = false;
  // The sampling temperature: log-probs are of softmax(logits / T), as at
  // sampling time (0 or 1: plain softmax).
  double temperature = 1.0;
  bool compute_entropy =
      true;  // entropy metric (and bonus, when its coef != 0)
  int64_t pad_id = 0;
  // Data parallelism (docs/distributed.md): the learner ranks' communicator,
  // or null for one process. When set, each rank passes its share of the
  // global batch (BatchShare), the loss is normalised over the global batch,
  // gradients are reduce-scattered in buckets of `bucket_bytes`, and the
  // optimizer is ZeRO-1 (ShardedAdamW) instead of AdamW. Not owned.
  distributed::Communicator* communicator = nullptr;
  int64_t bucket_bytes = int64_t{25} << 20;
  // dtype of the reduce-scatter (float32 or bfloat16: half the bytes on the
  // wire); the shard is summed back into float32 either way.
  torch::ScalarType reduce_dtype = torch::kFloat32;
  // Data-parallel only: kZero3 shards the parameters and gradients too
  // (zero3.h); the model's decoder layers then hold their weights only
  // while they compute, and every layer is recomputed in backward.
  Sharding sharding = Sharding::kZero1;
  // ZeRO-3, the same on every rank: on rank 0 the model passed in stays
  // whole and is refreshed, unit by unit, after every batch (learner rank 0
  // of a run samples, evaluates and checkpoints with it) while the trainer
  // shards a copy; the other ranks join the gathers. Under bf16 that whole
  // model is converted to bfloat16 (the masters are the shards). Off: the
  // model passed in is the one sharded.
  bool keep_full_model = false;
};

// Sums gradients across data-parallel ranks (identity on one rank).
using GradientReducer = std::function<void(const std::vector<torch::Tensor>&)>;

class PolicyTrainer {
 public:
  // `reference` is the frozen model for the KL term (may be empty when
  // loss.kl_coef == 0).
  PolicyTrainer(policy::Transformer model, PolicyTrainerOptions options,
                policy::Transformer reference = nullptr);

  // One GRPO batch: epochs_per_batch optimizer steps. Returns metrics
  // (loss, pg_loss, kl, entropy, clip_frac/low, clip_frac/high, grad_norm,
  // lr, tokens, throughput/train_tokens_per_s, train/non_finite_skipped,
  // ...). Throws NonFiniteError, with the weights and optimizer state as they
  // were before the step, when the loss or the gradient norm is NaN or
  // infinite and options.non_finite is kStop; also, whatever the option,
  // when an applied update made a parameter non-finite.
  std::map<std::string, double> GrpoStep(
      const std::vector<TrainSequence>& batch, int64_t policy_version);
  // trainer.kl_in_reward's penalty: per sequence, the sum over its trained
  // tokens of log pi_sampling - log pi_ref (k1; the reference's log-probs of
  // softmax(logits / temperature), as sampled). Needs the reference model.
  // One reference forward per micro_batch sequences.
  std::vector<double> ReferenceKlSums(const std::vector<TrainSequence>& batch);
  // One SFT step: token-mean negative log-likelihood of the trained tokens.
  std::map<std::string, double> SftStep(
      const std::vector<TrainSequence>& batch);
  void set_gradient_reducer(GradientReducer reducer) {
    reduce_ = std::move(reducer);
  }
  // The unsharded optimizer; throws InternalError on a data-parallel trainer
  // (use sharded_optimizer()).
  AdamW& optimizer();
  // The ZeRO-1 optimizer of a data-parallel trainer, null otherwise.
  ShardedAdamW* sharded_optimizer() { return sharded_.get(); }
  // The ZeRO-3 state of a trainer with sharding kZero3, null otherwise.
  Zero3* zero3() { return zero3_.get(); }
  // The trained weights, whole, on rank `root` (empty elsewhere), in
  // `dtype` (the rollout's: bfloat16 halves what is sent to workers), on
  // the CPU. Under ZeRO-3 they are gathered one unit at a time, so no rank
  // ever holds the whole float32 model beside its shards. Collective.
  std::vector<std::pair<std::string, torch::Tensor>> GatherWeights(
      torch::ScalarType dtype, int root = 0);
  // Whether each rank keeps a checkpoint shard (ZeRO-1 or ZeRO-3).
  bool sharded() const { return sharded_ || zero3_; }
  // Writes this rank's shard of the optimizer state (ZeRO-1) or of the
  // parameters and optimizer state (ZeRO-3) into checkpoint folder `dir`.
  void SaveShards(const std::string& dir) const;
  // Restores what SaveShards wrote, from any number of ranks, or the
  // optimizer.safetensors of a one-process checkpoint. Every rank calls it.
  void RestoreShards(const std::string& dir);
  // Optimizer steps skipped for a non-finite loss or gradient norm so far.
  int64_t non_finite_skipped() const { return non_finite_skipped_; }
  int64_t optimizer_step() const {
    if (zero3_) return zero3_->step();
    return sharded_ ? sharded_->step() : optimizer_->step();
  }
  // Bytes of optimizer state this rank holds.
  int64_t OptimizerStateBytes() const {
    if (zero3_) return zero3_->StateBytes();
    return sharded_ ? sharded_->StateBytes() : optimizer_->StateBytes();
  }
  // The model trained. Under ZeRO-3 its layers are empty between steps;
  // with keep_full_model the whole, refreshed model is full_model().
  policy::Transformer& model() { return model_; }
  policy::Transformer& full_model() { return full_ ? full_ : model_; }
  const PolicyTrainerOptions& options() const { return options_; }

 private:
  // b rows of width L, on the model's device. Padded: one sequence per row.
  // Packed: several per row, told apart by `segments`; targets across a
  // sequence boundary are masked, and per-target values are [b, L-1].
  struct MicroBatch {
    torch::Tensor ids;                // [b, L] int64
    torch::Tensor attention;          // [b, L] int64, 1 = real token
    torch::Tensor segments;           // packed: [b, L] int64, 0 = padding
    torch::Tensor sequence_ids;       // packed: [b, L-1], target's sequence
    torch::Tensor mask;               // [b, L-1] float, trained targets
    torch::Tensor rollout;            // [b, L-1] float
    torch::Tensor advantages;         // [b], or [b, L-1] when packed or
                                      // any sequence has token advantages
    torch::Tensor seq_policy_tokens;  // packed: [b, L-1], of the target's seq
    int64_t tokens = 0;               // real tokens (forward cost)
    int64_t slots = 0;                // b x L: what the forward computes
  };
  std::vector<MicroBatch> Split(const std::vector<TrainSequence>& batch) const;
  // Share of the forward's slots that hold padding (metric train/
  // pad_fraction; packing drives it towards 0).
  static double PadFraction(const std::vector<MicroBatch>& micro);
  // Before the update: the ratio's denominators and the KL reference's
  // log-probs. Without `recompute` the denominators are the sampling-time
  // log-probs. With it and one optimizer step per batch they are left
  // undefined: the weights that score the old policy are the ones the loss
  // is taken at, so the learner's own forward, detached, is that log-prob
  // (the ratio exactly 1) and no second forward is spent on it (a stale
  // batch under distributed.overlap, or bf16, would pay one per step).
  // With several epochs they are computed here, once.
  void FixedLogProbs(const std::vector<MicroBatch>& micro, bool recompute,
                     std::vector<torch::Tensor>* old,
                     std::vector<torch::Tensor>* ref);
  // Packed rows hold several sequences, so the loss aggregation becomes
  // per-token weights (GrpoLossInputs::loss_weights); empty when padded.
  std::vector<torch::Tensor> PackedLossWeights(
      const std::vector<MicroBatch>& micro, const GrpoLossOptions& loss,
      double global_count) const;
  // Rows of sequence indices: one per row (padded, similar lengths share a
  // micro-batch), or first-fit packed rows of one pass each.
  std::vector<std::vector<size_t>> Rows(
      const std::vector<TrainSequence>& batch) const;
  // Log-probs of the targets [b, L-1]; entropy [b, L-1] when asked.
  torch::Tensor TargetLogProbs(policy::Transformer& model, const MicroBatch& mb,
                               torch::Tensor* entropy);
  // Reduce, clip, AdamW step; returns the global grad norm. `loss` is this
  // rank's share of the loss whose gradients were accumulated.
  double ApplyGradients(double loss);
  // False when the step must not be applied (kSkip); throws for kStop. The
  // gradients are dropped either way.
  bool StepIsFinite(bool loss_finite, double loss, double grad_norm);
  void DropGradients();
  std::vector<torch::Tensor> Parameters() const;
  // ZeRO-3: every rank must run as many layer passes as the others (each
  // gathers), so a rank with fewer micro-batches gets empty ones, which
  // contribute nothing. Returns how many of `micro` are real.
  size_t EqualiseMicroBatches(std::vector<MicroBatch>* micro) const;
  // ZeRO-3: an empty micro-batch's forward and backward (zero gradients).
  void EmptyPass(const MicroBatch& mb);
  // ZeRO-3 with keep_full_model: copies the sharded weights into full_,
  // one gathered unit at a time. Collective.
  void RefreshFullModel();

  policy::Transformer model_;
  policy::Transformer reference_;
  PolicyTrainerOptions options_;
  std::unique_ptr<AdamW> optimizer_;       // one process
  std::unique_ptr<ShardedAdamW> sharded_;  // data-parallel (ZeRO-1)
  std::unique_ptr<Zero3> zero3_;           // data-parallel (ZeRO-3)
  policy::Transformer full_{nullptr};      // ZeRO-3, keep_full_model
  GradientReducer reduce_;
  int64_t non_finite_skipped_ = 0;
};

}  // namespace clinrl::trainer
