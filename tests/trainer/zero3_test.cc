// ZeRO-3 under mpiexec (2 and 3 ranks): each rank keeps 1/N of the
// parameters, gradients and moments, gathers a decoder layer only while it
// computes, and still ends where one process training the whole batch ends.
// Its checkpoints resume on 1, 2 and 3 ranks, and its weights, gathered
// layer by layer, reach a rollout worker through the weight publisher.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>

#include "core/error.h"
#include "distributed/communicator.h"
#include "distributed/weight_publisher.h"
#include "distributed/weight_subscriber.h"
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
using Weights = std::map<std::string, torch::Tensor>;

Communicator& World() {
  static std::unique_ptr<Communicator> world =
      distributed::MakeMpiCommunicator(60000);
  return *world;
}

using testing::GlobalBatch;
using testing::SharedTempDir;
using testing::ShareOf;

PolicyTrainerOptions Options() {
  PolicyTrainerOptions o;
  o.micro_batch = 2;
  o.schedule = {1e-3, 0, 100, 1.0};
  o.adamw.weight_decay = 0.01;
  o.grad_clip = 0.5;  // active: the tiny model's gradient norm is larger
  // What ZeRO-3 implies, so that both sides compute the head in chunks.
  o.activation_checkpointing = true;
  return o;
}

PolicyTrainerOptions Zero3Options(Communicator& comm) {
  PolicyTrainerOptions o = Options();
  o.communicator = &comm;
  o.sharding = Sharding::kZero3;
  o.bucket_bytes = 4096;  // several reduce-scatter buckets per layer
  return o;
}

Weights WeightsOf(policy::Transformer& model) {
  Weights out;
  for (const auto& p : model->named_parameters()) {
    out[p.key()] = p.value().detach().clone();
  }
  return out;
}

// Every rank gets the whole weights (gathered to rank 0, then broadcast).
Weights GatheredWeights(PolicyTrainer& trainer, Communicator& comm,
                        const Weights& shapes) {
  Weights out;
  for (auto& [name, t] : trainer.GatherWeights(torch::kFloat32)) out[name] = t;
  for (const auto& [name, like] : shapes) {
    if (comm.rank() != 0) out[name] = torch::empty_like(like);
    comm.Broadcast(out[name], 0);
  }
  return out;
}

// The weights every test starts from (TinyPolicy's seed).
Weights Initial() {
  policy::Transformer model = testing::TinyPolicy();
  return WeightsOf(model);
}

double MaxDifference(const Weights& a, const Weights& b) {
  double most = 0;
  EXPECT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      ADD_FAILURE() << "missing " << name;
      continue;
    }
    most = std::max(most, (t - it->second).abs().max().item<double>());
  }
  return most;
}

// AdamW moves a weight by at most ~lr (1e-3) per step. The ranks sum the
// gradients in another order than one process (per micro-batch and layer,
// then over ranks), float32 differences that Adam's m / sqrt(v) amplifies on
// weights whose gradient is near zero; the bound is 1e-5, 1/300 of
// three steps' movement.
constexpr double kWeightTolerance = 1e-5;

TEST(Zero3Test, GrpoAndSftStepsEndWhereOneProcessEnds) {
  Communicator& world = World();
  policy::Transformer single_model = testing::TinyPolicy();
  PolicyTrainer single(single_model, Options());
  policy::Transformer sharded_model = testing::TinyPolicy();
  PolicyTrainer sharded(sharded_model, Zero3Options(world));
  ASSERT_NE(sharded.zero3(), nullptr);
  ASSERT_EQ(sharded.sharded_optimizer(), nullptr);

  bool clipped = false;
  for (int step = 0; step < 3; ++step) {
    const auto batch = GlobalBatch(step);
    const auto want = single.GrpoStep(batch, 0);
    const auto got = sharded.GrpoStep(ShareOf(batch, world), 0);
    clipped |= want.at("grad_norm") > 0.5;
    for (const char* key : {"grad_norm", "loss", "pg_loss"}) {
      EXPECT_NEAR(got.at(key), want.at(key),
                  1e-5 * (std::abs(want.at(key)) + 1e-3))
          << key << " at step " << step << ", rank " << world.rank();
    }
    // Between steps the model holds no weights at all: only the shards do.
    for (const auto& p : sharded_model->parameters()) {
      ASSERT_EQ(p.numel(), 0) << "a parameter stayed gathered";
    }
  }
  single.SftStep(GlobalBatch(5));
  sharded.SftStep(ShareOf(GlobalBatch(5), world));
  EXPECT_TRUE(clipped) << "the test should exercise global-norm clipping";
  EXPECT_EQ(sharded.optimizer_step(), 4);

  const Weights want = WeightsOf(single_model);
  const Weights got = GatheredWeights(sharded, world, want);
  const double diff = MaxDifference(got, want);
  const double moved = MaxDifference(want, Initial());
  if (world.rank() == 0) {
    std::cout << "zero3 on " << world.size() << " ranks: max |w_zero3 - w_1| "
              << diff << ", max movement " << moved << std::endl;
  }
  EXPECT_LT(diff, kWeightTolerance) << "rank " << world.rank();
  EXPECT_GT(moved, 1e-3);  // the comparison is not of untrained weights
}

TEST(Zero3Test, KeptFullModelOnRankZeroFollowsTheShards) {
  Communicator& world = World();
  policy::Transformer full = testing::TinyPolicy();
  PolicyTrainerOptions o = Zero3Options(world);
  o.keep_full_model = true;
  PolicyTrainer sharded(full, o);
  sharded.GrpoStep(ShareOf(GlobalBatch(0), world), 0);
  sharded.GrpoStep(ShareOf(GlobalBatch(1), world), 0);
  const Weights gathered = GatheredWeights(sharded, world, Initial());
  if (world.rank() == 0) {
    // Rank 0's model stayed whole and holds the trained weights, bit for bit.
    EXPECT_EQ(MaxDifference(WeightsOf(full), gathered), 0.0);
    EXPECT_GT(MaxDifference(WeightsOf(full), Initial()), 1e-4);
  } else {
    // The other ranks keep no copy: the model they passed is the sharded one.
    for (const auto& p : full->parameters()) EXPECT_EQ(p.numel(), 0);
  }
}

// Parameters + gradients + AdamW moments: 16 bytes per float32 parameter in
// one process; each of N ranks must hold 1/N of it, up to the padding of
// each unit (fewer than N elements per unit and tensor).
TEST(Zero3Test, EachRankHoldsOneNthOfParametersGradientsAndMoments) {
  Communicator& world = World();
  policy::Transformer model = testing::TinyPolicy();
  int64_t numel = 0;
  for (const auto& p : model->parameters()) numel += p.numel();
  const int64_t one_rank = 16 * numel;
  PolicyTrainer sharded(model, Zero3Options(world));
  sharded.GrpoStep(ShareOf(GlobalBatch(0), world), 0);
  const int64_t mine = sharded.zero3()->ShardBytes();
  const int64_t units = 2 + 1;  // TinyPolicy's two layers and the root
  const int64_t n = world.size();
  const int64_t padding = 16 * units * (n - 1);
  if (world.rank() == 0) {
    std::cout << "one rank " << one_rank << " bytes; each of " << n << " ranks "
              << mine << " (1/N = " << one_rank / n << ")" << std::endl;
  }
  EXPECT_GE(mine * n, one_rank);
  EXPECT_LE(mine * n, one_rank + padding * n);
  // The moments alone are 1/N of AdamW's too.
  EXPECT_LE(sharded.OptimizerStateBytes() * n, 8 * numel + 8 * units * n * n);
  // Gathered at most: the root and one layer.
  EXPECT_LT(sharded.zero3()->peak_gathered_numel(), numel);
}

// GRPO's several epochs over one batch: each epoch after the first runs on
// the root the previous update changed, and still ends where one process
// ends.
TEST(Zero3Test, SeveralEpochsPerBatchEndWhereOneProcessEnds) {
  Communicator& world = World();
  PolicyTrainerOptions one_process = Options();
  one_process.epochs_per_batch = 2;
  PolicyTrainerOptions zero3 = Zero3Options(world);
  zero3.epochs_per_batch = 2;
  policy::Transformer single_model = testing::TinyPolicy();
  PolicyTrainer single(single_model, one_process);
  policy::Transformer sharded_model = testing::TinyPolicy();
  PolicyTrainer sharded(sharded_model, zero3);
  for (int step = 0; step < 2; ++step) {
    const auto batch = GlobalBatch(step);
    const auto want = single.GrpoStep(batch, 0);
    const auto got = sharded.GrpoStep(ShareOf(batch, world), 0);
    EXPECT_NEAR(got.at("loss"), want.at("loss"),
                1e-5 * (std::abs(want.at("loss")) + 1e-3))
        << "step " << step << ", rank " << world.rank();
  }
  EXPECT_EQ(sharded.optimizer_step(), 4);
  const Weights want = WeightsOf(single_model);
  const double diff =
      MaxDifference(GatheredWeights(sharded, world, want), want);
  EXPECT_LT(diff, kWeightTolerance) << "rank " << world.rank();
  EXPECT_GT(MaxDifference(want, Initial()), 1e-3);
}

// What a GRPO step gathers: each layer once per forward pass and once more
// for its recompute in backward, the root once per epoch. An update leaves
// the root it made stale released; after the batch's last update nothing
// would read a gathered one.
TEST(Zero3Test, AStepGathersTheRootOncePerEpoch) {
  Communicator& world = World();
  const int64_t layers = 2;  // TinyPolicy's
  size_t most = 0;  // the largest share: every rank makes as many passes
  for (int r = 0; r < world.size(); ++r) {
    const auto [first, last] = BatchShare(7, r, world.size());
    most = std::max(most, last - first);
  }
  const auto passes = static_cast<int64_t>((most + 1) / 2);  // micro_batch 2
  for (const int64_t epochs : {1, 2}) {
    PolicyTrainerOptions o = Zero3Options(world);
    o.epochs_per_batch = epochs;
    policy::Transformer model = testing::TinyPolicy();
    PolicyTrainer sharded(model, o);
    const int64_t before = sharded.zero3()->gathers();
    sharded.GrpoStep(ShareOf(GlobalBatch(0), world), 0);
    // Twice per epoch (forward, recompute); several epochs also recompute
    // the old log-probs first, one forward more.
    const int64_t per_layer_and_pass = 2 * epochs + (epochs > 1 ? 1 : 0);
    EXPECT_EQ(sharded.zero3()->gathers() - before,
              epochs + layers * passes * per_layer_and_pass)
        << epochs << " epochs, rank " << world.rank();
  }
}

// N ranks train two steps and checkpoint, then take a third step. From the
// checkpoint, 1, 2, ... N ranks (sub-groups of the job) restore parameters
// and moments into a differently initialised model and take the same third
// step, which must give the same weights.
TEST(Zero3Test, CheckpointResumesOnEveryRankCount) {
  Communicator& world = World();
  const std::string root = SharedTempDir(world, "zero3_ckpt");
  policy::Transformer model = testing::TinyPolicy();
  const Weights shapes = WeightsOf(model);
  PolicyTrainer trainer(model, Zero3Options(world));
  for (int step = 0; step < 2; ++step) {
    trainer.GrpoStep(ShareOf(GlobalBatch(step), world), 0);
  }
  const std::string dir = WriteShardedCheckpoint(
      world, root, 2, [](const std::string&) {},
      [&](const std::string& d) { trainer.SaveShards(d); },
      {{"optimizer_step", trainer.optimizer_step()}});
  trainer.GrpoStep(ShareOf(GlobalBatch(2), world), 0);
  const Weights continued = GatheredWeights(trainer, world, shapes);
  const std::string latest = LatestCheckpoint(root);
  ASSERT_EQ(latest, dir);
  OpenCheckpoint(latest);  // every rank's shard is in the verified manifest

  for (int ranks = 1; ranks <= world.size(); ++ranks) {
    std::unique_ptr<Communicator> group =
        world.Split(world.rank() < ranks ? 0 : -1, world.rank());
    if (group) {
      policy::Transformer fresh = testing::TinyPolicy();
      fresh->ResetParameters(123);  // the weights must come from the shards
      PolicyTrainer resumed(fresh, Zero3Options(*group));
      resumed.RestoreShards(latest);
      EXPECT_EQ(resumed.optimizer_step(), 2);
      resumed.GrpoStep(ShareOf(GlobalBatch(2), *group), 0);
      const Weights got = GatheredWeights(resumed, *group, shapes);
      if (group->rank() == 0) {
        const double diff = MaxDifference(got, continued);
        std::cout << "resumed on " << ranks << " of " << world.size()
                  << " ranks: max |w - w_continued| " << diff << std::endl;
        EXPECT_LT(diff, kWeightTolerance) << "resumed on " << ranks;
      }
    }
    world.Barrier();
  }

  // The shards of ZeRO-3 are not ZeRO-1's: a zero1 trainer is told so.
  std::unique_ptr<Communicator> alone =
      distributed::MakeSingleRankCommunicator();
  policy::Transformer other = testing::TinyPolicy();
  PolicyTrainerOptions zero1 = Options();
  zero1.communicator = alone.get();
  PolicyTrainer mismatched(other, zero1);
  try {
    mismatched.RestoreShards(latest);
    ADD_FAILURE() << "a zero3 checkpoint loaded into zero1";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("trainer.sharding zero3"),
              std::string::npos)
        << e.what();
  }
  world.Barrier();
  if (world.rank() == 0) fs::remove_all(root);
}

// The weights a rollout worker receives: gathered unit by unit to rank 0
// (never more than the root and one layer whole), published, and pulled by
// a subscriber, in float32 equal to one process's training, and in bfloat16
// equal to those rounded.
TEST(Zero3Test, LayerByLayerPublishingFeedsAWorkerTheTrainedWeights) {
  Communicator& world = World();
  policy::Transformer single_model = testing::TinyPolicy();
  PolicyTrainer single(single_model, Options());
  policy::Transformer model = testing::TinyPolicy();
  int64_t numel = 0;
  for (const auto& p : model->parameters()) numel += p.numel();
  PolicyTrainer sharded(model, Zero3Options(world));
  for (int step = 0; step < 2; ++step) {
    single.GrpoStep(GlobalBatch(step), 0);
    sharded.GrpoStep(ShareOf(GlobalBatch(step), world), 0);
  }
  const auto fp32 = sharded.GatherWeights(torch::kFloat32);
  const auto bf16 = sharded.GatherWeights(torch::kBFloat16);
  EXPECT_LT(sharded.zero3()->peak_gathered_numel(), numel);
  if (world.rank() != 0) {
    EXPECT_TRUE(fp32.empty());
    return;
  }
  distributed::WeightPublisher publisher("tcp://127.0.0.1:0");
  distributed::WeightSubscriber worker(publisher.endpoint());
  const Weights want = WeightsOf(single_model);
  int64_t version = 0;
  for (const auto* sent : {&fp32, &bf16}) {
    ++version;
    publisher.Publish(version, *sent);
    std::optional<distributed::WeightUpdate> update;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!update && std::chrono::steady_clock::now() < deadline) {
      update = worker.Poll(200);
    }
    ASSERT_TRUE(update.has_value()) << "version " << version;
    EXPECT_EQ(update->version, version);
    Weights got;
    for (const auto& [name, t] : update->tensors) got[name] = t;
    ASSERT_EQ(got.size(), want.size());
    const bool half = sent == &bf16;
    for (const auto& [name, t] : want) {
      ASSERT_TRUE(got.count(name)) << name;
      EXPECT_EQ(got[name].scalar_type(),
                half ? torch::kBFloat16 : torch::kFloat32);
      const torch::Tensor expected = half ? t.to(torch::kBFloat16) : t;
      // bf16: the same rounding of weights 1e-5 apart, at most one unit in
      // the last place of bfloat16 (2^-8 relative).
      const double tol = half ? 0.0079 * (t.abs().max().item<double>() + 1e-6)
                              : kWeightTolerance;
      EXPECT_LE((got[name].to(torch::kFloat32) - expected.to(torch::kFloat32))
                    .abs()
                    .max()
                    .item<double>(),
                tol)
          << name << (half ? " (bf16)" : " (fp32)");
    }
  }
  std::cout << "published " << publisher.bytes_sent() << " bytes to a worker"
            << std::endl;
}

}  // namespace
}  // namespace clinrl::trainer
