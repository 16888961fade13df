#include "trainer/grpo_loss.h"

#include <sstream>

#include "core/error.h"

namespace clinrl::trainer {

KlEstimator ParseKlEstimator(const std::string& name) {
  if (name == "k1") return KlEstimator::kK1;
  if (name == "k2") return KlEstimator::kK2;
  if (name == "k3") return KlEstimator::kK3;
  throw ConfigError(fmt::format(
      "trainer.kl_estimator: got '{}', expected one of: k1, k2, k3", name));
}

PolicyLoss ParsePolicyLoss(const std::string& name) {
  if (name == "ppo_clip") return PolicyLoss::kPpoClip;
  if (name == "gspo") return PolicyLoss::kGspo;
  if (name == "cispo") return PolicyLoss::kCispo;
  throw ConfigError(fmt::format(
      "trainer.policy_loss: got '{}', expected one of: ppo_clip, gspo, cispo",
      name));
}

LossAggregation ParseLossAggregation(const std::string& name) {
  if (name == "token_mean") return LossAggregation::kTokenMean;
  if (name == "seq_mean_token_mean") return LossAggregation::kSeqMeanTokenMean;
  if (name == "seq_mean_token_sum_norm") {
    return LossAggregation::kSeqMeanTokenSumNorm;
  }
  throw ConfigError(
      fmt::format("trainer.loss_agg: got '{}', expected one of: token_mean, "
                  "seq_mean_token_mean, seq_mean_token_sum_norm",
                  name));
}

torch::Tensor KlPenalty(const torch::Tensor& logprobs,
                        const torch::Tensor& ref_logprobs,
                        KlEstimator estimator) {
  const torch::Tensor log_ratio = logprobs - ref_logprobs;
  switch (estimator) {
    case KlEstimator::kK1:
      return log_ratio;
    case KlEstimator::kK2:
      return 0.5 * log_ratio * log_ratio;
    case KlEstimator::kK3:
      // Clamped as in verl's low_var_kl: exp(-x) overflows for very unlikely
      // reference tokens and one token must not dominate the batch.
      return torch::clamp(torch::exp(-log_ratio) - 1.0 + log_ratio, -10.0,
                          10.0);
  }
  return log_ratio;
}

torch::Tensor AggregateLoss(const torch::Tensor& values,
                            const torch::Tensor& mask, LossAggregation mode,
                            double global_count, int64_t norm_length) {
  const torch::Tensor m = mask.to(values.scalar_type());
  const torch::Tensor masked = values * m;
  switch (mode) {
    case LossAggregation::kTokenMean: {
      if (global_count > 0) return masked.sum() / global_count;
      return masked.sum() / torch::clamp_min(m.sum(), 1.0);
    }
    case LossAggregation::kSeqMeanTokenMean: {
      const torch::Tensor per_seq =
          masked.sum(-1) / torch::clamp_min(m.sum(-1), 1.0);
      if (global_count > 0) return per_seq.sum() / global_count;
      return per_seq.mean();
    }
    case LossAggregation::kSeqMeanTokenSumNorm: {
      const double length = norm_length > 0
                                ? static_cast<double>(norm_length)
                                : static_cast<double>(values.size(-1));
      const torch::Tensor per_seq = masked.sum(-1) / length;
      if (global_count > 0) return per_seq.sum() / global_count;
      return per_seq.mean();
    }
  }
  return masked.sum();
}

namespace {
std::string ShapeString(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

void CheckShape(const torch::Tensor& t, const torch::Tensor& like,
                const char* name) {
  if (!t.defined()) return;
  if (t.sizes() != like.sizes()) {
    throw BadRequest(fmt::format("GrpoLoss: {} has shape {}, expected {}", name,
                                 ShapeString(t), ShapeString(like)));
  }
}
// Each token's value replaced by the mean over its sequence's masked tokens
// (differentiable); sequences are rows unless `ids` [B, T] names them.
torch::Tensor SequenceMeans(const torch::Tensor& values,
                            const torch::Tensor& mask,
                            const torch::Tensor& ids_in) {
  torch::Tensor ids = ids_in;
  if (!ids.defined()) {
    ids = torch::arange(values.size(0), mask.options().dtype(torch::kLong))
              .unsqueeze(1)
              .expand_as(values);
  }
  CheckShape(ids, values, "sequence_ids");
  const torch::Tensor flat = ids.reshape({-1}).to(torch::kLong);
  if (flat.numel() > 0 && flat.min().item<int64_t>() < 0) {
    throw BadRequest("GrpoLoss: sequence_ids must be >= 0");
  }
  const int64_t n = flat.numel() > 0 ? flat.max().item<int64_t>() + 1 : 0;
  const torch::Tensor sums =
      torch::zeros({n}, values.options())
          .index_add(0, flat, (values * mask).reshape({-1}));
  const torch::Tensor counts =
      torch::zeros({n}, mask.options()).index_add(0, flat, mask.reshape({-1}));
  return (sums / counts.clamp_min(1.0)).index_select(0, flat).view_as(values);
}

double MaskedMean(const torch::Tensor& v, const torch::Tensor& m) {
  const double count = m.sum().item<double>();
  if (count <= 0) return 0.0;
  return (v.detach() * m).sum().item<double>() / count;
}
}  // namespace

GrpoLossOutput GrpoLoss(const GrpoLossInputs& in, const GrpoLossOptions& opt) {
  if (!in.logprobs.defined() || in.logprobs.dim() != 2) {
    throw BadRequest("GrpoLoss: logprobs must be a [B, T] tensor");
  }
  CheckShape(in.old_logprobs, in.logprobs, "old_logprobs");
  CheckShape(in.mask, in.logprobs, "mask");
  CheckShape(in.ref_logprobs, in.logprobs, "ref_logprobs");
  CheckShape(in.rollout_logprobs, in.logprobs, "rollout_logprobs");
  CheckShape(in.entropy, in.logprobs, "entropy");
  CheckShape(in.loss_weights, in.logprobs, "loss_weights");
  if (!in.old_logprobs.defined() || !in.mask.defined() ||
      !in.advantages.defined()) {
    throw BadRequest(
        "GrpoLoss: old_logprobs, advantages and mask are required");
  }
  torch::Tensor adv = in.advantages.to(in.logprobs.scalar_type());
  if (adv.dim() == 1) {
    if (adv.size(0) != in.logprobs.size(0)) {
      throw BadRequest(fmt::format(
          "GrpoLoss: advantages has {} rows, expected {} (one per sequence)",
          adv.size(0), in.logprobs.size(0)));
    }
    adv = adv.unsqueeze(1).expand_as(in.logprobs);
  } else {
    CheckShape(adv, in.logprobs, "advantages");
  }
  const torch::Tensor mask = in.mask.to(in.logprobs.scalar_type());
  const auto aggregate = [&](const torch::Tensor& values) {
    if (in.loss_weights.defined()) return (values * in.loss_weights).sum();
    return AggregateLoss(values, mask, opt.aggregation, in.global_count,
                         opt.norm_length);
  };

  torch::Tensor log_ratio = in.logprobs - in.old_logprobs.detach();
  if (opt.policy_loss == PolicyLoss::kGspo) {
    log_ratio = SequenceMeans(log_ratio, mask, in.sequence_ids);
  }
  // Clamp before exp so one wild token cannot overflow the ratio (verl does
  // the same); the clipped surrogate bounds its effect anyway.
  const torch::Tensor ratio = torch::exp(torch::clamp(log_ratio, -20.0, 20.0));
  const torch::Tensor clipped_ratio =
      torch::clamp(ratio, 1.0 - opt.clip_low, 1.0 + opt.clip_high);
  torch::Tensor per_token;
  if (opt.policy_loss == PolicyLoss::kCispo) {
    per_token = -adv * clipped_ratio.detach() * in.logprobs;
  } else {
    per_token = torch::max(-adv * ratio, -adv * clipped_ratio);
  }

  GrpoLossOutput out;
  if (opt.tis_cap > 0 && in.rollout_logprobs.defined()) {
    // Truncated importance sampling: the rollout ran an older policy than
    // old_logprobs; reweight by min(pi_old / pi_rollout, cap).
    const torch::Tensor raw =
        torch::exp(in.old_logprobs.detach() - in.rollout_logprobs.detach());
    const torch::Tensor weight = torch::clamp_max(raw, opt.tis_cap);
    per_token = per_token * weight;
    out.tis_weight_mean = MaskedMean(weight, mask);
    out.tis_clip_frac = MaskedMean((raw > opt.tis_cap).to(mask.dtype()), mask);
  }
  const torch::Tensor pg = aggregate(per_token);
  torch::Tensor loss = pg;
  out.pg_loss = pg.item<double>();

  if (in.ref_logprobs.defined()) {
    const torch::Tensor kl =
        KlPenalty(in.logprobs, in.ref_logprobs.detach(), opt.kl_estimator);
    out.kl = MaskedMean(kl, mask);
    if (opt.kl_coef > 0) {
      loss = loss + opt.kl_coef * aggregate(kl);
    }
  }
  if (in.entropy.defined()) {
    out.entropy = MaskedMean(in.entropy, mask);
    if (opt.entropy_coef != 0) {
      loss = loss - opt.entropy_coef * aggregate(in.entropy);
    }
  }
  const torch::Tensor ratio_d = ratio.detach();
  const torch::Tensor adv_d = adv.detach();
  out.clip_frac_low = MaskedMean(
      ((ratio_d < 1.0 - opt.clip_low) & (adv_d < 0)).to(mask.dtype()), mask);
  out.clip_frac_high = MaskedMean(
      ((ratio_d > 1.0 + opt.clip_high) & (adv_d > 0)).to(mask.dtype()), mask);
  out.ratio_mean = MaskedMean(ratio_d, mask);
  out.loss = loss;
  return out;
}

}  // namespace clinrl::trainer
