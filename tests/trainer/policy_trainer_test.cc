#include "trainer/policy_trainer.h"

#include <gtest/gtest.h>

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

TEST(PolicyTrainerTest, MismatchedSequenceFieldsAreRefused) {
  policy::Transformer model = TinyModel();
  PolicyTrainer trainer(model, {});
  std::vector<TrainSequence> bad = Batch();
  bad[2].loss_mask.pop_back();
  EXPECT_THROW(trainer.SftStep(bad), BadRequest);
}

}  // namespace
}  // namespace clinrl::trainer
