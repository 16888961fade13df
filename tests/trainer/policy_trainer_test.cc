#include "trainer/policy_trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/trainer/tiny_policy.h"

namespace clinrl::trainer {
namespace {

policy::Transformer TinyModel() { return testing::TinyPolicy(); }

std::vector<TrainSequence> Batch() {
  std::vector<TrainSequence> batch;
  for (int i = 0; i < 5; ++i) {
    TrainSequence s;
    const int length = 6 + 3 * i;  // ragged: padding differs per micro-batch
    for (int t = 0; t < length; ++t) {
      s.ids.push_back((7 * i + 3 * t) % 50);
      s.loss_mask.push_back(t >= 3 ? 1 : 0);  // the prompt carries no loss
      s.rollout_logprobs.push_back(t >= 3 ? -3.9f : 0.0f);
    }
    s.advantage = i % 2 ? 1.0 : -0.5;
    batch.push_back(s);
  }
  return batch;
}

// The batch's loss is normalised over the whole batch, so splitting it into
// micro-batches must not change the accumulated gradient.
TEST(PolicyTrainerTest, MicroBatchSizeDoesNotChangeTheGradient) {
  for (auto agg :
       {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenMean,
        LossAggregation::kSeqMeanTokenSumNorm}) {
    std::vector<std::vector<torch::Tensor>> grads;
    for (int64_t micro : {1, 2, 5}) {
      policy::Transformer model = TinyModel();
      PolicyTrainerOptions o;
      o.micro_batch = micro;
      o.loss.aggregation = agg;
      PolicyTrainer trainer(model, o);
      std::vector<torch::Tensor> captured;
      trainer.set_gradient_reducer([&](const std::vector<torch::Tensor>& ps) {
        for (const auto& p : ps) captured.push_back(p.grad().clone());
      });
      trainer.GrpoStep(Batch(), 0);
      grads.push_back(captured);
    }
    for (size_t run = 1; run < grads.size(); ++run) {
      ASSERT_EQ(grads[run].size(), grads[0].size());
      double max_rel = 0;
      for (size_t i = 0; i < grads[0].size(); ++i) {
        const double scale = grads[0][i].abs().max().item<double>() + 1e-12;
        max_rel = std::max(
            max_rel,
            (grads[run][i] - grads[0][i]).abs().max().item<double>() / scale);
      }
      EXPECT_LT(max_rel, 1e-4) << "aggregation " << static_cast<int>(agg)
                               << ", micro-batch run " << run;
    }
  }
}

TEST(PolicyTrainerTest, SftLowersTheLossAndTheReducerSeesEveryGradient) {
  policy::Transformer model = TinyModel();
  PolicyTrainerOptions o;
  o.micro_batch = 2;
  o.schedule = {5e-3, 0, 50, 1.0};
  PolicyTrainer trainer(model, o);
  int64_t reduced = 0;
  size_t tensors = 0;
  trainer.set_gradient_reducer([&](const std::vector<torch::Tensor>& grads) {
    ++reduced;
    tensors = grads.size();
  });
  const double first = trainer.SftStep(Batch()).at("loss");
  double last = first;
  for (int i = 0; i < 30; ++i) last = trainer.SftStep(Batch()).at("loss");
  EXPECT_LT(last, 0.5 * first);
  EXPECT_EQ(reduced, 31);
  EXPECT_EQ(tensors, model->parameters().size());
  EXPECT_EQ(trainer.optimizer_step(), 31);
}

torch::Tensor FlatWeights(policy::Transformer& model) {
  std::vector<torch::Tensor> flat;
  for (const auto& p : model->parameters()) flat.push_back(p.reshape(-1));
  return torch::cat(flat).detach().clone();
}

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

// A NaN advantage makes the GRPO loss NaN: the step must throw before AdamW
// touches the weights or its own state, naming the value and the option.
TEST(PolicyTrainerTest, NonFiniteLossStopsTheStepBeforeTheUpdate) {
  policy::Transformer model = TinyModel();
  PolicyTrainerOptions o;
  o.micro_batch = 2;
  o.schedule = {1e-3, 0, 50, 1.0};
  PolicyTrainer trainer(model, o);
  trainer.GrpoStep(Batch(), 0);  // a finite step first: moments exist
  const torch::Tensor before = FlatWeights(model);
  std::map<std::string, torch::Tensor> moments;  // copies: the live ones move
  for (const auto& [name, t] : trainer.optimizer().StateTensors()) {
    moments[name] = t.clone();
  }
  std::vector<TrainSequence> bad = Batch();
  bad[3].advantage = std::nan("");
  try {
    trainer.GrpoStep(bad, 0);
    FAIL() << "a NaN loss was applied";
  } catch (const NonFiniteError& e) {
    const std::string m = e.what();
    EXPECT_TRUE(Contains(m, "optimizer step 2")) << m;
    EXPECT_TRUE(Contains(m, "the loss is NaN")) << m;
    EXPECT_TRUE(Contains(m, "trainer.non_finite=skip")) << m;
  }
  EXPECT_TRUE(torch::equal(FlatWeights(model), before));
  EXPECT_EQ(trainer.optimizer_step(), 1);
  for (const auto& [name, t] : trainer.optimizer().StateTensors()) {
    EXPECT_TRUE(torch::equal(t, moments.at(name))) << name;
  }
  for (const auto& p : model->parameters()) {
    EXPECT_FALSE(p.grad().defined()) << "gradients of the refused step kept";
  }
}

// Skipping: a gradient poisoned with +inf (the loss stays finite) leaves
// weights and AdamW state alone and is counted; the next step is then
// exactly the step a fresh trainer takes, so nothing of the skipped batch
// leaks into it.
TEST(PolicyTrainerTest, NonFiniteGradNormIsSkippedCountedAndForgotten) {
  PolicyTrainerOptions o;
  o.micro_batch = 2;
  o.schedule = {1e-3, 0, 50, 1.0};
  o.non_finite = NonFinitePolicy::kSkip;
  policy::Transformer model = TinyModel();
  PolicyTrainer trainer(model, o);
  bool poison = true;
  trainer.set_gradient_reducer([&](const std::vector<torch::Tensor>& ps) {
    if (poison) ps[1].mutable_grad().view(-1)[0] = INFINITY;
  });
  const torch::Tensor before = FlatWeights(model);
  const auto skipped = trainer.SftStep(Batch());
  EXPECT_TRUE(std::isfinite(skipped.at("loss")));
  EXPECT_TRUE(std::isinf(skipped.at("grad_norm")));
  EXPECT_EQ(skipped.at("train/non_finite_skipped"), 1.0);
  EXPECT_EQ(trainer.non_finite_skipped(), 1);
  EXPECT_EQ(trainer.optimizer_step(), 0);
  EXPECT_TRUE(torch::equal(FlatWeights(model), before));

  poison = false;
  const auto next = trainer.SftStep(Batch());
  EXPECT_EQ(next.at("train/non_finite_skipped"), 0.0);
  EXPECT_EQ(trainer.non_finite_skipped(), 1);
  EXPECT_EQ(trainer.optimizer_step(), 1);
  policy::Transformer fresh_model = TinyModel();
  PolicyTrainer fresh(fresh_model, o);
  const auto want = fresh.SftStep(Batch());
  EXPECT_FALSE(torch::equal(FlatWeights(model), before)) << "no update";
  EXPECT_TRUE(torch::equal(FlatWeights(model), FlatWeights(fresh_model)));
  EXPECT_EQ(next.at("grad_norm"), want.at("grad_norm"));
}

// The operator's case: lr 1e30 moves the weights to ~1e30 in one finite
// step; the forward pass then overflows. The first non-finite step throws
// with the weights as the previous step left them.
TEST(PolicyTrainerTest, HugeLearningRateStopsAtTheFirstNonFiniteStep) {
  policy::Transformer model = TinyModel();
  PolicyTrainerOptions o;
  o.micro_batch = 2;
  o.schedule = {1e30, 0, 50, 1.0};
  PolicyTrainer trainer(model, o);
  std::string error;
  torch::Tensor before;
  int64_t steps = 0;
  for (; steps < 6 && error.empty(); ++steps) {
    before = FlatWeights(model);
    try {
      trainer.SftStep(Batch());
    } catch (const NonFiniteError& e) {
      error = e.what();
    }
  }
  ASSERT_FALSE(error.empty()) << "lr 1e30 trained 6 steps without an error";
  EXPECT_GE(steps, 2) << "the first step's values are finite";
  EXPECT_TRUE(Contains(error, "the loss is") ||
              Contains(error, "gradient norm (grad_norm) is"))
      << error;
  EXPECT_TRUE(torch::equal(FlatWeights(model), before));
  EXPECT_EQ(trainer.optimizer_step(), steps - 1);
  EXPECT_TRUE(torch::isfinite(FlatWeights(model)).all().item<bool>());
}

// An update that overflows a weight (finite loss and gradients) cannot be
// skipped: the run stops even under kSkip, naming the parameter. LibTorch
// refuses a learning rate past float32's range, so the overflow is forced:
// one weight near float32's largest value and a decay factor of 2.
TEST(PolicyTrainerTest, UpdateThatOverflowsAWeightStopsEvenWhenSkipping) {
  policy::Transformer model = TinyModel();
  PolicyTrainerOptions o;
  o.schedule = {1.0, 0, 50, 1.0};
  o.adamw.weight_decay = -1.0;  // param *= 1 - lr * weight_decay = 2
  o.non_finite = NonFinitePolicy::kSkip;
  PolicyTrainer trainer(model, o);
  const std::string name = model->named_parameters()[1].key();
  trainer.set_gradient_reducer([&](const std::vector<torch::Tensor>& ps) {
    torch::NoGradGuard no_grad;
    ps[1].view(-1)[0] = 3e38;  // the gradients stay finite
  });
  try {
    trainer.SftStep(Batch());
    FAIL() << "an overflowing update was accepted";
  } catch (const NonFiniteError& e) {
    const std::string m = e.what();
    EXPECT_TRUE(Contains(m, "made parameter " + name + " non-finite")) << m;
    EXPECT_TRUE(Contains(m, "cannot be skipped")) << m;
  }
  EXPECT_EQ(trainer.non_finite_skipped(), 0);
}

TEST(PolicyTrainerTest, NonFinitePolicyNames) {
  EXPECT_EQ(ParseNonFinitePolicy("stop"), NonFinitePolicy::kStop);
  EXPECT_EQ(ParseNonFinitePolicy("skip"), NonFinitePolicy::kSkip);
  try {
    ParseNonFinitePolicy("ignore");
    FAIL() << "'ignore' accepted";
  } catch (const ConfigError& e) {
    EXPECT_TRUE(Contains(e.what(), "trainer.non_finite")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "stop, skip")) << e.what();
  }
}

TEST(PolicyTrainerTest, MismatchedSequenceFieldsAreRefused) {
  policy::Transformer model = TinyModel();
  PolicyTrainer trainer(model, {});
  std::vector<TrainSequence> bad = Batch();
  bad[2].loss_mask.pop_back();
  EXPECT_THROW(trainer.SftStep(bad), BadRequest);
}

struct StepResult {
  std::map<std::string, double> metrics;
  std::vector<torch::Tensor> grads;   // as the reducer saw them, every epoch
  std::vector<torch::Tensor> params;  // after the step
};

StepResult RunGrpoStep(PolicyTrainerOptions o,
                       const std::vector<TrainSequence>& batch) {
  policy::Transformer model = TinyModel();
  policy::Transformer reference = TinyModel();
  PolicyTrainer trainer(model, o, reference);
  StepResult r;
  trainer.set_gradient_reducer([&](const std::vector<torch::Tensor>& ps) {
    for (const auto& p : ps) r.grads.push_back(p.grad().clone());
  });
  r.metrics = trainer.GrpoStep(batch, 0);
  for (const auto& p : model->parameters()) r.params.push_back(p.clone());
  return r;
}

double MaxAbsDiff(const std::vector<torch::Tensor>& a,
                  const std::vector<torch::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
  }
  return diff;
}

// Two ways to compute one GRPO step agree: the loss and its statistics and
// every gradient within 1e-6, the updated weights within 1e-5 (AdamW divides
// by sqrt(v): where a gradient is ~0 it magnifies the rounding of a
// different summation order).
void ExpectSameStep(const StepResult& got, const StepResult& want,
                    const std::string& what) {
  for (const char* key : {"loss", "pg_loss", "kl", "entropy", "ratio/mean"}) {
    EXPECT_NEAR(got.metrics.at(key), want.metrics.at(key), 1e-6)
        << what << " " << key;
  }
  EXPECT_LE(MaxAbsDiff(got.grads, want.grads), 1e-6) << what;
  EXPECT_LE(MaxAbsDiff(got.params, want.params), 1e-5) << what;
}

// Packed micro-batches compute the padded loss: for every aggregation, with
// the KL and entropy terms and two epochs (recomputed denominators), the
// loss and every gradient agree within 1e-6 (fp32), the updated weights
// within 1e-5.
TEST(PolicyTrainerTest, PackingGivesThePaddedLossAndGradients) {
  for (auto agg :
       {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenMean,
        LossAggregation::kSeqMeanTokenSumNorm}) {
    PolicyTrainerOptions o;
    o.micro_batch = 2;
    o.epochs_per_batch = 2;
    o.loss.aggregation = agg;
    o.loss.kl_coef = 0.05;
    o.loss.entropy_coef = 0.01;
    o.schedule = {1e-3, 0, 10, 1.0};
    const StepResult padded = RunGrpoStep(o, Batch());
    o.packing = true;
    const StepResult packed = RunGrpoStep(o, Batch());
    const std::string what = "aggregation " + std::to_string(int(agg));
    ExpectSameStep(packed, padded, what);
    // This small batch already pads little; packing must not pad more.
    EXPECT_LE(packed.metrics.at("train/pad_fraction"),
              padded.metrics.at("train/pad_fraction"))
        << what;
  }
}

// Activation checkpointing recomputes the layers and the output head's
// logits (chunked) in backward: same loss, metrics and gradients, with the
// KL and entropy terms, a temperature and recomputed denominators, padded
// and packed.
TEST(PolicyTrainerTest, CheckpointingGivesTheSameLossAndGradients) {
  for (bool packing : {false, true}) {
    PolicyTrainerOptions o;
    o.micro_batch = 2;
    o.epochs_per_batch = 2;
    o.packing = packing;
    o.temperature = 0.7;
    o.loss.kl_coef = 0.05;
    o.loss.entropy_coef = 0.01;
    o.schedule = {1e-3, 0, 10, 1.0};
    const StepResult plain = RunGrpoStep(o, Batch());
    o.activation_checkpointing = true;
    const StepResult recomputed = RunGrpoStep(o, Batch());
    ExpectSameStep(recomputed, plain, packing ? "packed" : "padded");
  }
}

// A stale batch (distributed.overlap) or one scored again for any reason,
// with one optimizer step per batch: the old log-probs are the learner's
// own forward, detached, not a second forward. On a batch whose sampling
// log-probs are the model's own, that step equals the plain on-policy one
// (old = sampling log-probs, no importance weight) within 1e-6.
TEST(PolicyTrainerTest, OneEpochTakesTheOldLogProbsFromItsOwnForward) {
  std::vector<TrainSequence> batch = Batch();
  policy::Transformer probe = TinyModel();
  for (TrainSequence& s : batch) {
    torch::NoGradGuard no_grad;
    const auto lp = policy::SequenceLogProbs(
        probe, torch::tensor(s.ids, torch::kLong).view({1, -1}))[0];
    for (size_t t = 1; t < s.ids.size(); ++t) {
      s.rollout_logprobs[t] =
          s.loss_mask[t] ? lp[static_cast<int64_t>(t) - 1].item<float>() : 0;
    }
  }
  PolicyTrainerOptions o;
  o.micro_batch = 2;
  o.loss.kl_coef = 0.05;
  o.loss.entropy_coef = 0.01;
  o.schedule = {1e-3, 0, 10, 1.0};
  const StepResult on_policy = RunGrpoStep(o, batch);
  EXPECT_EQ(on_policy.metrics.at("train/recomputed_old_logprobs"), 0.0);
  o.recompute_old_logprobs = true;
  const StepResult rescored = RunGrpoStep(o, batch);
  EXPECT_EQ(rescored.metrics.at("train/recomputed_old_logprobs"), 1.0);
  ExpectSameStep(rescored, on_policy, "old log-probs from the forward");
}

// trainer.kl_in_reward's per-sequence sums: sampled minus reference
// log-probs over the trained tokens, the reference's of softmax(logits / T)
// computed here with torch's log_softmax over the whole logits.
TEST(PolicyTrainerTest, ReferenceKlSumsAreSampledMinusReferenceLogProbs) {
  policy::Transformer model = TinyModel();
  policy::Transformer reference = TinyModel();
  {
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(9);
    for (auto& p : reference->parameters()) {
      p.add_(torch::randn(p.sizes(), gen) * 0.05);
    }
  }
  PolicyTrainerOptions o;
  o.temperature = 0.8;
  o.micro_batch = 2;  // ragged rows share a forward, and a row is left over
  PolicyTrainer trainer(model, o, reference);
  const std::vector<TrainSequence> batch = Batch();
  const std::vector<double> sums = trainer.ReferenceKlSums(batch);
  ASSERT_EQ(sums.size(), batch.size());
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < batch.size(); ++i) {
    const TrainSequence& s = batch[i];
    const auto n = static_cast<int64_t>(s.ids.size());
    const torch::Tensor ids = torch::tensor(s.ids).view({1, n});
    const torch::Tensor lp =
        torch::log_softmax(reference->forward(ids)[0] / 0.8, -1);
    double want = 0;
    for (int64_t t = 1; t < n; ++t) {
      if (s.loss_mask[t]) {
        want += s.rollout_logprobs[t] - lp[t - 1][s.ids[t]].item<double>();
      }
    }
    EXPECT_NEAR(sums[i], want, 1e-4 * std::max(1.0, std::fabs(want))) << i;
  }
}

// Per-token advantages (per-turn credit) that equal the sequence's advantage
// on every position give the scalar step exactly, padded and packed; ones
// that differ by turn give another step.
TEST(PolicyTrainerTest, TokenAdvantagesGeneraliseTheSequenceAdvantage) {
  for (bool packing : {false, true}) {
    PolicyTrainerOptions o;
    o.micro_batch = 2;
    o.packing = packing;
    o.schedule = {1e-3, 0, 10, 1.0};
    const StepResult scalar = RunGrpoStep(o, Batch());
    std::vector<TrainSequence> batch = Batch();
    for (TrainSequence& s : batch) {
      s.token_advantages.assign(s.ids.size(), static_cast<float>(s.advantage));
    }
    const StepResult per_token = RunGrpoStep(o, batch);
    EXPECT_NEAR(per_token.metrics.at("loss"), scalar.metrics.at("loss"), 1e-7);
    EXPECT_LE(MaxAbsDiff(per_token.grads, scalar.grads), 1e-7);
    for (TrainSequence& s : batch) {
      for (size_t t = 0; t < s.ids.size(); t += 2) s.token_advantages[t] = 0;
    }
    const StepResult turns = RunGrpoStep(o, batch);
    EXPECT_GT(MaxAbsDiff(turns.grads, scalar.grads), 1e-6);
  }
  std::vector<TrainSequence> bad = Batch();
  bad[1].token_advantages = {1.0f};
  policy::Transformer model = TinyModel();
  PolicyTrainer trainer(model, PolicyTrainerOptions{});
  EXPECT_THROW(trainer.GrpoStep(bad, 0), BadRequest);
}

TEST(PolicyTrainerTest, PackedSftStepEqualsThePaddedOne) {
  double losses[2];
  std::vector<torch::Tensor> params[2];
  for (int packing = 0; packing < 2; ++packing) {
    policy::Transformer model = TinyModel();
    PolicyTrainerOptions o;
    o.micro_batch = 3;
    o.packing = packing == 1;
    o.schedule = {1e-3, 0, 10, 1.0};
    PolicyTrainer trainer(model, o);
    losses[packing] = trainer.SftStep(Batch()).at("loss");
    for (const auto& p : model->parameters()) params[packing].push_back(p);
  }
  EXPECT_NEAR(losses[0], losses[1], 1e-6);
  EXPECT_LE(MaxAbsDiff(params[0], params[1]), 1e-6);
}

// bf16: the master weights, their gradients and the AdamW moments stay
// float32, the learner recomputes the ratio's denominator and reports the
// sampling mismatch, and truncated importance weights are applied.
TEST(PolicyTrainerTest, Bf16StepKeepsFloat32MastersAndMeasuresTheMismatch) {
  policy::Transformer model = TinyModel();
  PolicyTrainerOptions o;
  o.precision = policy::Precision::kBf16;
  o.micro_batch = 2;
  o.schedule = {1e-3, 0, 10, 1.0};
  PolicyTrainer trainer(model, o);
  bool saw_grads = false;
  trainer.set_gradient_reducer([&](const std::vector<torch::Tensor>& ps) {
    for (const auto& p : ps) EXPECT_EQ(p.grad().scalar_type(), torch::kFloat);
    saw_grads = !ps.empty();
  });
  const auto before = model->parameters()[0].clone();
  const auto m = trainer.GrpoStep(Batch(), 0);
  EXPECT_TRUE(saw_grads);
  EXPECT_EQ(m.at("train/recomputed_old_logprobs"), 1.0);
  // The batch's log-probs (-3.9) are not this model's: the mismatch shows,
  // and the importance weights min(pi_old / pi_rollout, 2) differ from 1.
  EXPECT_GT(m.at("mismatch/logprob_abs_diff_mean"), 0.0);
  EXPECT_GE(m.at("mismatch/logprob_abs_diff_max"),
            m.at("mismatch/logprob_abs_diff_mean"));
  EXPECT_GE(m.at("mismatch/kl_k3"), 0.0);
  EXPECT_NE(m.at("tis/weight_mean"), 1.0);
  for (const auto& p : model->parameters()) {
    EXPECT_EQ(p.scalar_type(), torch::kFloat);
  }
  EXPECT_FALSE(torch::equal(before, model->parameters()[0]));
  EXPECT_EQ(trainer.OptimizerStateBytes(),
            2 * 4 * testing::TinyPolicy()->config().ParameterCount());
}

// The quickstart's model (configs/quickstart.json) over 50 GRPO steps of one
// batch: the bf16 loss curve stays within the stated band of the fp32 one
// (docs/training.md): |loss_bf16 - loss_fp32| <= 0.005 + 1% of |loss_fp32|
// at every step, and both runs move the loss the same way.
TEST(PolicyTrainerTest, Bf16LossCurveFollowsFp32OnTheQuickstartModel) {
  policy::ModelConfig c;
  c.hidden_size = 128;
  c.intermediate_size = 352;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 512;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 1024;
  std::vector<TrainSequence> batch;
  policy::Transformer probe{policy::TransformerOptions(c)};
  probe->ResetParameters(4);
  for (int i = 0; i < 8; ++i) {
    TrainSequence s;
    const int length = 40 + 4 * i;
    for (int t = 0; t < length; ++t) {
      s.ids.push_back((37 * i + 11 * t + t * t) % c.vocab_size);
      s.loss_mask.push_back(t >= 8 ? 1 : 0);
    }
    // Sampling-time log-probs: the fp32 model's own, as on-policy.
    torch::NoGradGuard no_grad;
    const auto lp = policy::SequenceLogProbs(
        probe, torch::tensor(s.ids, torch::kLong).view({1, -1}))[0];
    s.rollout_logprobs.push_back(0.0f);
    for (int t = 1; t < length; ++t) {
      s.rollout_logprobs.push_back(s.loss_mask[t] ? lp[t - 1].item<float>()
                                                  : 0.0f);
    }
    s.advantage = i % 2 ? 1.0 : -1.0;
    batch.push_back(s);
  }
  std::vector<double> curves[2];
  for (int bf16 = 0; bf16 < 2; ++bf16) {
    policy::Transformer model{policy::TransformerOptions(c)};
    model->ResetParameters(4);
    PolicyTrainerOptions o;
    o.precision = bf16 ? policy::Precision::kBf16 : policy::Precision::kFp32;
    o.recompute_old_logprobs = true;  // the same algorithm on both sides
    o.micro_batch = 8;
    o.schedule = {3e-4, 0, 50, 1.0};
    PolicyTrainer trainer(model, o);
    for (int step = 0; step < 50; ++step) {
      curves[bf16].push_back(trainer.GrpoStep(batch, 0).at("loss"));
    }
  }
  double worst = 0;
  for (size_t i = 0; i < curves[0].size(); ++i) {
    const double gap = std::abs(curves[1][i] - curves[0][i]);
    worst = std::max(worst, gap);
    EXPECT_LE(gap, 0.005 + 0.01 * std::abs(curves[0][i]))
        << "step " << i + 1 << ": fp32 " << curves[0][i] << ", bf16 "
        << curves[1][i];
  }
  std::cout << "loss fp32 " << curves[0].front() << " -> " << curves[0].back()
            << ", bf16 " << curves[1].front() << " -> " << curves[1].back()
            << "; largest |gap| " << worst << std::endl;
  // Training moved the loss, by the same sign in both precisions.
  EXPECT_LT(curves[0].back(), curves[0].front() - 0.05);
  EXPECT_LT(curves[1].back(), curves[1].front() - 0.05);
}

}  // namespace
}  // namespace clinrl::trainer
