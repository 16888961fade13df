// The GRPO policy loss of docs/design.md: token-level clipped surrogate with
// separate clip_low / clip_high (DAPO clip-higher), optional KL to a frozen
// reference (k1, k2, k3), truncated importance weights for stale rollouts,
// an entropy bonus, and three loss aggregations. Only policy tokens (mask 1)
// carry loss; env tokens are masked and receive zero gradient.
#pragma once

#include <torch/torch.h>

#include <string>

namespace clinrl::trainer {

enum class KlEstimator { kK1, kK2, kK3 };
enum class LossAggregation {
  kTokenMean,            // every token of the batch weighs the same
  kSeqMeanTokenMean,     // mean over sequences of each sequence's token mean
  kSeqMeanTokenSumNorm,  // mean over sequences of token sums / a constant (Dr.
                         // GRPO)
};

// What multiplies the advantage (trainer.policy_loss).
enum class PolicyLoss {
  // PPO's clipped surrogate per token, ratio pi / pi_old (GRPO, DAPO).
  kPpoClip,
  // GSPO (Zheng et al. 2025; TRL's importance_sampling_level="sequence"):
  // one ratio per sequence, exp of the mean per-token log-ratio over its
  // policy tokens, clipped as PPO's. Its clip range is ~1e-3, not 0.2.
  kGspo,
  // CISPO (MiniMax-M1, 2025): -sg(clip(ratio)) * A * log pi on every token.
  // The weight is clipped, the token never dropped: a rare token whose
  // ratio leaves the range still gets a gradient.
  kCispo,
};

KlEstimator ParseKlEstimator(const std::string& name);
PolicyLoss ParsePolicyLoss(const std::string& name);
LossAggregation ParseLossAggregation(const std::string& name);

// Per-token KL(pi || ref) estimates from log-probs of the sampled tokens
// (Schulman's k1 = log r, k2 = (log r)^2 / 2, k3 = (1/r - 1) + log r with
// r = pi / ref).
torch::Tensor KlPenalty(const torch::Tensor& logprobs,
                        const torch::Tensor& ref_logprobs,
                        KlEstimator estimator);

// Reduces per-token values [B, T] with `mask` [B, T]. `global_count`, when
// > 0, replaces the local normaliser so that micro-batches of one batch sum to
// the full-batch value: the batch's token count for token_mean, its sequence
// count otherwise. `norm_length` is the constant of seq_mean_token_sum_norm
// (0 = the mask's width T).
torch::Tensor AggregateLoss(const torch::Tensor& values,
                            const torch::Tensor& mask, LossAggregation mode,
                            double global_count = 0.0, int64_t norm_length = 0);

struct GrpoLossOptions {
  PolicyLoss policy_loss = PolicyLoss::kPpoClip;
  double clip_low = 0.2;
  double clip_high = 0.28;
  double kl_coef = 0.0;
  KlEstimator kl_estimator = KlEstimator::kK3;
  LossAggregation aggregation = LossAggregation::kTokenMean;
  double tis_cap = 2.0;  // truncated importance weight cap; 0 = no weights
  double entropy_coef = 0.0;
  int64_t norm_length = 0;
};

struct GrpoLossInputs {
  torch::Tensor logprobs;          // [B, T] current policy, carries the graph
  torch::Tensor old_logprobs;      // [B, T] the ratio's denominator (no grad)
  torch::Tensor advantages;        // [B] per sequence, or [B, T] per token
  torch::Tensor mask;              // [B, T] 1 on policy tokens, 0 elsewhere
  torch::Tensor ref_logprobs;      // optional [B, T], for the KL term
  torch::Tensor rollout_logprobs;  // optional [B, T], sampling-time log-probs
  torch::Tensor entropy;           // optional [B, T], for the entropy bonus
  double global_count = 0.0;       // see AggregateLoss
  // Packed rows hold several sequences, so per-row reductions do not apply:
  // when set [B, T], every aggregation is the sum of values x loss_weights,
  // the weights carrying the aggregation's normalisers (PolicyTrainer).
  torch::Tensor loss_weights;
  // GSPO's sequences: optional [B, T] int64 >= 0, one id per sequence
  // (packed rows hold several); default: each row is one sequence.
  torch::Tensor sequence_ids;
};

struct GrpoLossOutput {
  torch::Tensor loss;  // scalar, differentiable
  double pg_loss = 0.0;
  double kl = 0.0;              // mean over policy tokens
  double entropy = 0.0;         // mean over policy tokens
  double clip_frac_low = 0.0;   // tokens whose ratio hit 1 - clip_low (A < 0)
  double clip_frac_high = 0.0;  // tokens whose ratio hit 1 + clip_high (A > 0)
  double ratio_mean = 0.0;
  double tis_weight_mean = 1.0;
  double tis_clip_frac = 0.0;  // tokens whose importance weight was capped
};

// Validates shapes (errors name the input) and computes the loss.
GrpoLossOutput GrpoLoss(const GrpoLossInputs& in, const GrpoLossOptions& opt);

}  // namespace clinrl::trainer
