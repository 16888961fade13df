// The data-parallel learner under mpiexec (2 and 3 ranks): each rank trains on
// its share of one global batch, and the result must be the one-process
// PolicyTrainer's on the whole batch. Also: ZeRO-1 keeps ~1/N of AdamW's
// state per rank, and a sharded checkpoint written by 2 ranks resumes on 1
// rank and on all ranks with the same next step.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "distributed/communicator.h"
#include "policy/safetensors.h"
#include "tests/trainer/ragged_batch.h"
#include "tests/trainer/shared_temp_dir.h"
#include "tests/trainer/tiny_policy.h"
#include "trainer/checkpoint.h"
#include "trainer/data_parallel.h"
#include "trainer/policy_trainer.h"

namespace clinrl::trainer {
namespace {

namespace fs = std::filesystem;
using distributed::Communicator;

Communicator& World() {
  static std::unique_ptr<Communicator> world =
      distributed::MakeMpiCommunicator(60000);
  return *world;
}

policy::Transformer TinyModel() { return testing::TinyPolicy(); }

using testing::GlobalBatch;
using testing::SharedTempDir;
using testing::ShareOf;

PolicyTrainerOptions Options(LossAggregation aggregation) {
  PolicyTrainerOptions o;
  o.micro_batch = 2;
  o.schedule = {1e-3, 0, 100, 1.0};
  o.adamw.weight_decay = 0.01;
  o.grad_clip = 0.5;  // active: the tiny model's gradient norm is larger
  o.loss.aggregation = aggregation;
  return o;
}

torch::Tensor FlatWeights(policy::Transformer model) {
  std::vector<torch::Tensor> flat;
  for (const auto& p : model->parameters()) flat.push_back(p.reshape(-1));
  return torch::cat(flat).detach().clone();
}

// Tolerances. AdamW moves every weight by at most ~lr (1e-3) per step, 3e-3
// over the 3 steps. The ranks sum partial gradients in a different order than
// one process, a float32 difference of ~1e-7 relative, which Adam's
// m / sqrt(v) amplifies on weights whose gradient is near zero: up to 4e-7
// observed with 2 and 3 ranks. 5e-6 is 1/600 of the movement; a wrong
// normaliser or a lost shard moves weights by ~1e-3. Gradient norm and loss
// are float64 sums of float32 terms: 1e-5 relative, of at least 1e-2 (a loss
// near 3e-3 differs by 4e-8 with 3 ranks, its float32 terms' rounding; a
// wrong normaliser changes it by a factor).
constexpr double kWeightTolerance = 5e-6;
constexpr double kMetricTolerance = 1e-5;
constexpr double kMetricFloor = 1e-2;

TEST(DataParallelTrainerTest, RanksOnSharesMatchOneProcessOnTheWholeBatch) {
  Communicator& world = World();
  for (auto aggregation :
       {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenSumNorm}) {
    policy::Transformer single_model = TinyModel();
    PolicyTrainer single(single_model, Options(aggregation));
    policy::Transformer dp_model = TinyModel();
    PolicyTrainerOptions dp_options = Options(aggregation);
    dp_options.communicator = &world;
    dp_options.bucket_bytes = 4096;  // several buckets on the tiny model
    PolicyTrainer dp(dp_model, dp_options);
    ASSERT_NE(dp.sharded_optimizer(), nullptr);
    bool clipped = false;
    for (int step = 0; step < 3; ++step) {
      const auto batch = GlobalBatch(step);
      const auto want = single.GrpoStep(batch, 0);
      const auto got = dp.GrpoStep(ShareOf(batch, world), 0);
      clipped |= want.at("grad_norm") > dp_options.grad_clip;
      for (const char* key : {"grad_norm", "loss", "pg_loss"}) {
        EXPECT_NEAR(got.at(key), want.at(key),
                    kMetricTolerance * (std::abs(want.at(key)) + kMetricFloor))
            << key << " at step " << step << ", rank " << world.rank();
      }
      EXPECT_DOUBLE_EQ(got.at("train/policy_tokens"),
                       want.at("train/policy_tokens"));
    }
    EXPECT_TRUE(clipped) << "the test should exercise global-norm clipping";
    EXPECT_EQ(dp.optimizer_step(), 3);
    const double diff = (FlatWeights(dp_model) - FlatWeights(single_model))
                            .abs()
                            .max()
                            .item<double>();
    const double moved = (FlatWeights(single_model) - FlatWeights(TinyModel()))
                             .abs()
                             .max()
                             .item<double>();
    if (world.rank() == 0) {
      std::cout << "aggregation " << static_cast<int>(aggregation)
                << ": max |w_dp - w_1| " << diff << ", max movement " << moved
                << std::endl;
    }
    EXPECT_LT(diff, kWeightTolerance)
        << "aggregation " << static_cast<int>(aggregation) << ", rank "
        << world.rank();
    EXPECT_GT(moved, 1e-3);  // the comparison is not of untrained weights
  }
}

// LoRA under data parallelism: the sharded optimizer holds the adapters
// alone, and the ranks end where one process does, base untouched.
TEST(DataParallelTrainerTest, LoraAdaptersTrainAsInOneProcess) {
  Communicator& world = World();
  policy::LoraOptions lora;
  lora.rank = 3;
  lora.target_modules = {"q_proj", "v_proj", "up_proj", "down_proj"};
  lora.seed = 4;
  const auto make = [&] {
    policy::Transformer model = TinyModel();
    model->AddLora(lora);
    return model;
  };
  policy::Transformer single_model = make();
  PolicyTrainer single(single_model, Options(LossAggregation::kTokenMean));
  policy::Transformer dp_model = make();
  PolicyTrainerOptions dp_options = Options(LossAggregation::kTokenMean);
  dp_options.communicator = &world;
  PolicyTrainer dp(dp_model, dp_options);
  int64_t adapter_numel = 0;
  for (const auto& p : dp_model->named_parameters()) {
    if (policy::IsLoraParameter(p.key())) adapter_numel += p.value().numel();
  }
  EXPECT_EQ(dp.sharded_optimizer()->layout().numel, adapter_numel);
  for (int step = 0; step < 3; ++step) {
    const auto batch = GlobalBatch(step);
    single.GrpoStep(batch, 0);
    dp.GrpoStep(ShareOf(batch, world), 0);
  }
  const double diff = (FlatWeights(dp_model) - FlatWeights(single_model))
                          .abs()
                          .max()
                          .item<double>();
  EXPECT_LT(diff, kWeightTolerance) << "rank " << world.rank();
  policy::Transformer start = make();
  auto before = start->named_parameters();
  double adapter_moved = 0;
  for (const auto& p : dp_model->named_parameters()) {
    const double moved =
        (p.value() - before[p.key()]).abs().max().item<double>();
    if (policy::IsLoraParameter(p.key())) {
      adapter_moved = std::max(adapter_moved, moved);
    } else {
      EXPECT_EQ(moved, 0.0) << p.key();
    }
  }
  EXPECT_GT(adapter_moved, 1e-3);
}

// trainer.reduce_dtype bf16 with packed shares: the loss is computed before
// the reduction (packing equals padding within 1e-6), the summed gradient is
// rounded to bfloat16 on the wire (relative 2^-8), and AdamW's first step
// moves by lr x sign(gradient), which that rounding almost never flips.
TEST(DataParallelTrainerTest, Bf16ReductionOfPackedSharesStaysNearOneProcess) {
  Communicator& world = World();
  policy::Transformer single_model = TinyModel();
  PolicyTrainer single(single_model, Options(LossAggregation::kTokenMean));
  policy::Transformer dp_model = TinyModel();
  PolicyTrainerOptions dp_options = Options(LossAggregation::kTokenMean);
  dp_options.communicator = &world;
  dp_options.packing = true;
  dp_options.reduce_dtype = torch::kBFloat16;
  PolicyTrainer dp(dp_model, dp_options);
  const auto batch = GlobalBatch(0);
  const auto want = single.GrpoStep(batch, 0);
  const auto got = dp.GrpoStep(ShareOf(batch, world), 0);
  EXPECT_NEAR(got.at("loss"), want.at("loss"),
              kMetricTolerance * (std::abs(want.at("loss")) + 1e-3));
  EXPECT_NEAR(got.at("grad_norm"), want.at("grad_norm"),
              1e-2 * want.at("grad_norm"));
  EXPECT_NE(got.at("grad_norm"), want.at("grad_norm"));  // bf16 really ran
  const double mean_diff = (FlatWeights(dp_model) - FlatWeights(single_model))
                               .abs()
                               .mean()
                               .item<double>();
  EXPECT_LT(mean_diff, 1e-5) << "rank " << world.rank();
  for (const auto& p : dp_model->parameters()) {
    EXPECT_EQ(p.scalar_type(), torch::kFloat);
  }
}

TEST(DataParallelTrainerTest, SftOnSharesMatchesOneProcess) {
  Communicator& world = World();
  policy::Transformer single_model = TinyModel();
  PolicyTrainer single(single_model, Options(LossAggregation::kTokenMean));
  policy::Transformer dp_model = TinyModel();
  PolicyTrainerOptions o = Options(LossAggregation::kTokenMean);
  o.communicator = &world;
  PolicyTrainer dp(dp_model, o);
  for (int step = 0; step < 2; ++step) {
    const auto batch = GlobalBatch(step);
    const auto want = single.SftStep(batch);
    const auto got = dp.SftStep(ShareOf(batch, world));
    EXPECT_NEAR(got.at("loss"), want.at("loss"),
                kMetricTolerance * std::abs(want.at("loss")));
  }
  EXPECT_LT((FlatWeights(dp_model) - FlatWeights(single_model))
                .abs()
                .max()
                .item<double>(),
            kWeightTolerance);
}

// With fewer sequences than ranks some rank trains on nothing, yet must
// still join every collective.
TEST(DataParallelTrainerTest, ARankWithAnEmptyShareStillTakesPart) {
  Communicator& world = World();
  const auto batch = GlobalBatch(0, 1);
  policy::Transformer single_model = TinyModel();
  PolicyTrainer single(single_model, Options(LossAggregation::kTokenMean));
  single.GrpoStep(batch, 0);
  policy::Transformer dp_model = TinyModel();
  PolicyTrainerOptions o = Options(LossAggregation::kTokenMean);
  o.communicator = &world;
  PolicyTrainer dp(dp_model, o);
  dp.GrpoStep(ShareOf(batch, world), 0);
  EXPECT_LT((FlatWeights(dp_model) - FlatWeights(single_model))
                .abs()
                .max()
                .item<double>(),
            kWeightTolerance);
}

TEST(DataParallelTrainerTest, EachRankHoldsAboutOneNthOfTheOptimizerState) {
  Communicator& world = World();
  policy::Transformer single_model = TinyModel();
  PolicyTrainer single(single_model, Options(LossAggregation::kTokenMean));
  policy::Transformer dp_model = TinyModel();
  PolicyTrainerOptions o = Options(LossAggregation::kTokenMean);
  o.communicator = &world;
  PolicyTrainer dp(dp_model, o);
  const int64_t full = single.OptimizerStateBytes();
  const int64_t mine = dp.OptimizerStateBytes();
  const int64_t n = world.size();
  // Shards are ceil(numel / N) elements (the last one shorter): two moments
  // of 4 bytes, so at most 8 bytes over full / N.
  EXPECT_LE(mine, full / n + 8) << "rank " << world.rank();
  EXPECT_GE(mine, full / n - 8 * n) << "rank " << world.rank();
  torch::Tensor total = torch::tensor({mine});
  world.AllReduce(total, distributed::ReduceOp::kSum);
  EXPECT_EQ(total.item<int64_t>(), full);  // the shards cover it exactly once
  EXPECT_THROW(dp.optimizer(), InternalError);
}

void LoadWeights(policy::Transformer& model, const std::string& path) {
  policy::SafetensorsFile file(path);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    p.value().copy_(file.Get(p.key()));
  }
}

// Two ranks train two steps and write a sharded checkpoint, then take a
// third step. Resuming from the checkpoint on one rank, and on every rank
// of the job, must give the same third step.
TEST(DataParallelTrainerTest, ShardedCheckpointOfTwoRanksResumesOnOneAndOnAll) {
  Communicator& world = World();
  const std::string root = SharedTempDir(world, "dp_ckpt");
  const PolicyTrainerOptions base = Options(LossAggregation::kTokenMean);
  std::unique_ptr<Communicator> pair =
      world.Split(world.rank() < 2 ? 0 : -1, world.rank());
  torch::Tensor continued;  // rank 0: the weights after step 3 on 2 ranks
  if (pair) {
    policy::Transformer model = TinyModel();
    PolicyTrainerOptions o = base;
    o.communicator = pair.get();
    PolicyTrainer trainer(model, o);
    for (int step = 0; step < 2; ++step) {
      trainer.GrpoStep(ShareOf(GlobalBatch(step), *pair), 0);
    }
    const std::string dir = WriteShardedCheckpoint(
        *pair, root, 2,
        [&](const std::string& d) {
          std::vector<std::pair<std::string, at::Tensor>> weights;
          for (const auto& p : model->named_parameters()) {
            weights.emplace_back(p.key(), p.value());
          }
          policy::SaveSafetensors(d + "/weights.safetensors", weights);
        },
        [&](const std::string& d) {
          trainer.sharded_optimizer()->SaveShard(d);
        },
        {{"optimizer_step", trainer.optimizer_step()}});
    EXPECT_EQ(fs::path(dir).filename().string(), "step_00000002");
    trainer.GrpoStep(ShareOf(GlobalBatch(2), *pair), 0);
    continued = FlatWeights(model);
  }
  policy::Transformer shape_model = TinyModel();
  const int64_t numel = FlatWeights(shape_model).numel();
  if (world.rank() != 0) continued = torch::empty({numel});
  world.Broadcast(continued, 0);

  const std::string latest = LatestCheckpoint(root);
  ASSERT_FALSE(latest.empty());
  OpenCheckpoint(latest);  // every rank's shard is in the verified manifest
  EXPECT_TRUE(
      fs::exists(latest + "/optimizer.shard-00001-of-00002.safetensors"));

  auto resume = [&](Communicator& comm) {
    policy::Transformer model = TinyModel();
    LoadWeights(model, latest + "/weights.safetensors");
    PolicyTrainerOptions o = base;
    o.communicator = &comm;
    PolicyTrainer trainer(model, o);
    trainer.sharded_optimizer()->LoadShards(latest);
    EXPECT_EQ(trainer.optimizer_step(), 2);
    trainer.GrpoStep(ShareOf(GlobalBatch(2), comm), 0);
    return FlatWeights(model);
  };
  std::unique_ptr<Communicator> alone =
      distributed::MakeSingleRankCommunicator();
  EXPECT_LT((resume(*alone) - continued).abs().max().item<double>(),
            kWeightTolerance)
      << "resumed on 1 rank";
  EXPECT_LT((resume(world) - continued).abs().max().item<double>(),
            kWeightTolerance)
      << "resumed on " << world.size() << " ranks";

  // A model whose parameters differ from the checkpoint's is refused.
  policy::ModelConfig c;
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.vocab_size = 50;
  policy::Transformer other{policy::TransformerOptions(c)};
  PolicyTrainerOptions o = base;
  o.communicator = alone.get();
  PolicyTrainer mismatched(other, o);
  EXPECT_THROW(mismatched.sharded_optimizer()->LoadShards(latest), BadRequest);

  world.Barrier();
  if (world.rank() == 0) fs::remove_all(root);
}

// A checkpoint of the one-process trainer (AdamW::StateTensors names) loads
// into the sharded optimizer of any number of ranks.
TEST(DataParallelTrainerTest, UnshardedOptimizerStateLoadsIntoShards) {
  Communicator& world = World();
  const PolicyTrainerOptions base = Options(LossAggregation::kTokenMean);
  policy::Transformer single_model = TinyModel();
  PolicyTrainer single(single_model, base);
  single.GrpoStep(GlobalBatch(0), 0);
  policy::Transformer dp_model = TinyModel();
  {
    torch::NoGradGuard no_grad;
    auto src = single_model->parameters();
    auto dst = dp_model->parameters();
    for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
  }
  PolicyTrainerOptions o = base;
  o.communicator = &world;
  PolicyTrainer dp(dp_model, o);
  dp.sharded_optimizer()->LoadFullState(single.optimizer().StateTensors(),
                                        single.optimizer_step());
  single.GrpoStep(GlobalBatch(1), 0);
  dp.GrpoStep(ShareOf(GlobalBatch(1), world), 0);
  EXPECT_LT((FlatWeights(dp_model) - FlatWeights(single_model))
                .abs()
                .max()
                .item<double>(),
            kWeightTolerance);
}

// A NaN in the last rank's share only: every rank must take the same
// decision (the loss flag and the norm are global), or one would wait in a
// collective the others never join. Stop throws on every rank with the
// weights unchanged; skip leaves them unchanged on every rank and the next
// step matches the one-process trainer's first step.
TEST(DataParallelTrainerTest, NonFiniteShareStopsOrSkipsOnEveryRank) {
  Communicator& world = World();
  std::vector<TrainSequence> poisoned = GlobalBatch(0);
  poisoned.back().advantage = std::nan("");
  ASSERT_EQ(BatchShare(poisoned.size(), world.size() - 1, world.size()).second,
            poisoned.size());
  for (NonFinitePolicy policy :
       {NonFinitePolicy::kStop, NonFinitePolicy::kSkip}) {
    policy::Transformer model = TinyModel();
    PolicyTrainerOptions o = Options(LossAggregation::kTokenMean);
    o.communicator = &world;
    o.non_finite = policy;
    PolicyTrainer dp(model, o);
    const torch::Tensor before = FlatWeights(model);
    bool threw = false;
    try {
      const auto m = dp.GrpoStep(ShareOf(poisoned, world), 0);
      EXPECT_EQ(m.at("train/non_finite_skipped"), 1.0);
    } catch (const NonFiniteError& e) {
      threw = true;
      EXPECT_NE(std::string(e.what()).find("trainer.non_finite"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(threw, policy == NonFinitePolicy::kStop)
        << "rank " << world.rank();
    EXPECT_TRUE(torch::equal(FlatWeights(model), before))
        << "rank " << world.rank();
    EXPECT_EQ(dp.optimizer_step(), 0);
    if (policy == NonFinitePolicy::kStop) continue;
    EXPECT_EQ(dp.non_finite_skipped(), 1);
    policy::Transformer single_model = TinyModel();
    PolicyTrainer single(single_model, Options(LossAggregation::kTokenMean));
    single.GrpoStep(GlobalBatch(1), 0);
    dp.GrpoStep(ShareOf(GlobalBatch(1), world), 0);
    EXPECT_LT((FlatWeights(model) - FlatWeights(single_model))
                  .abs()
                  .max()
                  .item<double>(),
              kWeightTolerance);
  }
}

}  // namespace
}  // namespace clinrl::trainer
