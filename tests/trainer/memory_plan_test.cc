// The memory planner against byte counts worked out by hand for a tiny
// model: ZeRO-1 and ZeRO-3 on 1, 2 and 4 ranks, LoRA's adapter count,
// activation checkpointing, the KV pool, the peak and the verdict.
#include "trainer/memory_plan.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "trainer/memory_fix.h"

namespace clinrl::trainer {
namespace {

// hidden 32, intermediate 64, 2 layers, 4 heads of 8, 2 kv heads, vocab 100,
// tied, q/k/v biases (qwen2). By hand:
//   q = 32, kv = 16
//   a layer: q 32x32 + k, v 32x16 each + o 32x32 = 3072, biases 32+16+16 =
//   64, MLP 3 x 32 x 64 = 6144, two norms 64: 9344 parameters
//   the model: 2 x 9280 (layers less norms) + 2 x 2 x 32 + 32 (norms) +
//   100 x 32 (embedding) = 21920 parameters
constexpr int64_t kParams = 21920;
constexpr int64_t kLayerParams = 9344;

policy::ModelConfig TinyModel() {
  policy::ModelConfig m;
  m.model_type = "qwen2";
  m.hidden_size = 32;
  m.intermediate_size = 64;
  m.num_hidden_layers = 2;
  m.num_attention_heads = 4;
  m.num_key_value_heads = 2;
  m.vocab_size = 100;
  m.tie_word_embeddings = true;
  m.attention_bias = true;
  return m;
}

// 2 tasks x 2 episodes of at most 16 tokens, micro-batches of 2: one
// micro-batch is 2 x 16 = 32 tokens.
ClinrlConfig TinyRun() {
  ClinrlConfig c;
  c.rollout.tasks_per_step = 2;
  c.rollout.group_size = 2;
  c.rollout.max_tokens_per_episode = 16;
  c.rollout.max_turns = 1;
  c.rollout.max_tokens_per_turn = 8;
  c.trainer.micro_batch = 2;
  c.eval.validation_episodes = 4;
  c.eval.test_episodes = 4;
  return c;
}

MemoryPlanOptions CpuOptions(int64_t ranks, Sharding sharding) {
  MemoryPlanOptions o;
  o.cluster.cpu = true;
  o.cluster.device_bytes = int64_t{1} << 30;
  o.learner_ranks = ranks;
  o.sharding = sharding;
  o.runtime_bytes = 0;  // keeps the sums to the hand-worked items
  return o;
}

// Bytes of the named item of `role`, or -1 when the plan has no such item.
int64_t Item(const MemoryPlan& plan, const std::string& role,
             const std::string& name) {
  for (const RoleMemory& r : plan.roles) {
    if (r.role != role) continue;
    for (const MemoryItem& item : r.items) {
      if (item.name == name) return item.bytes;
    }
  }
  return -1;
}

TEST(MemoryPlanTest, ParameterCountsMatchTheHandCount) {
  EXPECT_EQ(TinyModel().ParameterCount(), kParams);
  const MemoryPlan plan =
      PlanMemory(TinyRun(), TinyModel(), CpuOptions(1, Sharding::kZero1));
  EXPECT_EQ(plan.parameters, kParams);
  // 2 tasks x 2 episodes on one rank, micro-batch 2, 16 tokens each.
  EXPECT_EQ(plan.micro_batch_sequences, 2);
  EXPECT_EQ(plan.sequence_tokens, 16);
}

TEST(MemoryPlanTest, OneRankHoldsWeightsGradientsAndMomentsWhole) {
  const MemoryPlan plan =
      PlanMemory(TinyRun(), TinyModel(), CpuOptions(1, Sharding::kZero1));
  EXPECT_EQ(Item(plan, "learner", "weights"), kParams * 4);
  EXPECT_EQ(Item(plan, "learner", "gradients"), kParams * 4);
  EXPECT_EQ(Item(plan, "learner", "AdamW moments"), 2 * kParams * 4);
  // ClipGradNorm squares the largest gradient (the 100 x 32 embedding) in
  // float64: 8 B for the copy, 8 for the square.
  EXPECT_EQ(Item(plan, "learner", "optimizer step buffers"), 16 * 3200);
  EXPECT_EQ(Item(plan, "learner", "KL reference model"), -1);
}

TEST(MemoryPlanTest, ZeroOneShardsOnlyTheMoments) {
  for (const int64_t ranks : {1, 2, 4}) {
    const MemoryPlan plan =
        PlanMemory(TinyRun(), TinyModel(), CpuOptions(ranks, Sharding::kZero1));
    SCOPED_TRACE(ranks);
    EXPECT_EQ(Item(plan, "learner", "weights"), kParams * 4);
    EXPECT_EQ(Item(plan, "learner", "gradients"), kParams * 4);
    // 21920 divides by 1, 2 and 4: no padding.
    EXPECT_EQ(Item(plan, "learner", "AdamW moments"),
              2 * (kParams / ranks) * 4);
  }
  // ReduceScatterGradients' flat float32 vector (21920 x 4), the reduced
  // shard and its float64 square (S x (4 + 16)); the all-gather's
  // (21920 + S) x 4 is smaller.
  const MemoryPlan two =
      PlanMemory(TinyRun(), TinyModel(), CpuOptions(2, Sharding::kZero1));
  EXPECT_EQ(Item(two, "learner", "ZeRO-1 flat buffers"),
            21920 * 4 + 10960 * 20);
  const MemoryPlan four =
      PlanMemory(TinyRun(), TinyModel(), CpuOptions(4, Sharding::kZero1));
  EXPECT_EQ(Item(four, "learner", "ZeRO-1 flat buffers"),
            21920 * 4 + 5480 * 20);
}

TEST(MemoryPlanTest, ZeroThreeShardsWeightsGradientsAndMoments) {
  for (const int64_t ranks : {1, 2, 4}) {
    const MemoryPlan plan =
        PlanMemory(TinyRun(), TinyModel(), CpuOptions(ranks, Sharding::kZero3));
    SCOPED_TRACE(ranks);
    EXPECT_EQ(Item(plan, "learner", "weights"), kParams / ranks * 4);
    EXPECT_EQ(Item(plan, "learner", "gradients"), kParams / ranks * 4);
    EXPECT_EQ(Item(plan, "learner", "AdamW moments"),
              2 * (kParams / ranks) * 4);
    // Gathered at once (trainer/zero3.h): the root (the tied embedding,
    // 3200, and the final norm, 32) for the whole step and one decoder layer
    // (9344); nothing to gather on 1 rank. Rank 0 keeps a whole model.
    EXPECT_EQ(Item(plan, "learner", "ZeRO-3 gathered root and layer"),
              ranks == 1 ? -1 : (3200 + 32 + kLayerParams) * 4);
    EXPECT_EQ(Item(plan, "learner", "whole model of learner rank 0 (ZeRO-3)"),
              ranks == 1 ? -1 : kParams * 4);
  }
}

TEST(MemoryPlanTest, LoraCountsRankTimesInPlusOutPerProjection) {
  LoraConfig lora;
  lora.rank = 4;
  lora.target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                         "gate_proj", "up_proj", "down_proj"};
  // (in, out) of each: q (32, 32), k and v (32, 16), o (32, 32), gate and
  // up (32, 64), down (64, 32).
  const int64_t per_layer =
      4 * ((32 + 32) + 2 * (32 + 16) + (32 + 32) + 2 * (32 + 64) + (64 + 32));
  EXPECT_EQ(LoraAdapterParameters(TinyModel(), lora), 2 * per_layer);

  ClinrlConfig run = TinyRun();
  run.policy.lora = lora;
  const MemoryPlan plan =
      PlanMemory(run, TinyModel(), CpuOptions(1, Sharding::kZero1));
  EXPECT_EQ(plan.adapter_parameters, 2 * per_layer);
  // The base is frozen: no gradients or moments for it.
  EXPECT_EQ(Item(plan, "learner", "base weights (frozen)"), kParams * 4);
  EXPECT_EQ(Item(plan, "learner", "LoRA adapters"), 2 * per_layer * 4);
  EXPECT_EQ(Item(plan, "learner", "gradients"), 2 * per_layer * 4);
  EXPECT_EQ(Item(plan, "learner", "AdamW moments"), 2 * 2 * per_layer * 4);
}

TEST(MemoryPlanTest, UnknownLoraTargetIsNamed) {
  LoraConfig lora;
  lora.rank = 4;
  lora.target_modules = {"qkv_proj"};
  try {
    LoraAdapterParameters(TinyModel(), lora);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "policy.lora.target_modules[0]: got 'qkv_proj'"),
              std::string::npos)
        << e.what();
  }
}

TEST(MemoryPlanTest, ActivationsFollowTheSavedTensorsOfALayer) {
  const MemoryPlan plan =
      PlanMemory(TinyRun(), TinyModel(), CpuOptions(1, Sharding::kZero1));
  // Per token and layer in float32: 6 h (residual, norms) + 5 q + 4 kv +
  // 4 I = 192 + 160 + 64 + 256 = 672 values = 2688 B; 32 tokens x 2 layers,
  // plus the final norm's 3 h floats a token.
  EXPECT_EQ(Item(plan, "learner", "activations (every layer)"),
            32 * 2 * 2688 + 32 * 3 * 32 * 4);
  // Whole logits: 32 tokens x 100 x (4 B logits + 4 x 4 B).
  EXPECT_EQ(Item(plan, "learner", "logits (whole)"), 32 * 100 * 20);
  // Padded: a boolean 2 x 16 x 16 mask and a float copy per layer.
  EXPECT_EQ(Item(plan, "learner", "attention masks (padded)"),
            2 * 16 * 16 * (1 + 4 * 2));
}

int64_t TrainingActivations(const MemoryPlan& plan) {
  int64_t sum = 0;
  for (const MemoryItem& item : plan.roles.front().items) {
    if (item.kind == "activations" || item.kind == "logits" ||
        item.kind == "masks") {
      sum += item.bytes;
    }
  }
  return sum;
}

TEST(MemoryPlanTest, CheckpointingReducesActivations) {
  // Long enough sequences that the saved activations dominate.
  ClinrlConfig run = TinyRun();
  run.rollout.max_tokens_per_episode = 1024;
  run.trainer.micro_batch = 4;
  const MemoryPlan plain =
      PlanMemory(run, TinyModel(), CpuOptions(1, Sharding::kZero1));
  run.trainer.activation_checkpointing = true;
  const MemoryPlan checkpointed =
      PlanMemory(run, TinyModel(), CpuOptions(1, Sharding::kZero1));
  EXPECT_LT(TrainingActivations(checkpointed), TrainingActivations(plain));
  EXPECT_LT(checkpointed.roles.front().peak_bytes,
            plain.roles.front().peak_bytes);
  // Checkpointed: each layer keeps its float32 input (4 x 1024 tokens x
  // 32 x 4 B) and one layer is recomputed at a time.
  EXPECT_EQ(Item(checkpointed, "learner", "layer inputs (checkpointed)"),
            2 * 4096 * 32 * 4 + 4096 * 3 * 32 * 4);
  EXPECT_EQ(
      Item(checkpointed, "learner", "activations of the recomputed layer"),
      4096 * 2688);
}

TEST(MemoryPlanTest, KvPoolDoublesFromSixtyFourBlocks) {
  // Rank 0 generates 4 episodes x 16 tokens: 4 blocks, within the first 64.
  const MemoryPlan small =
      PlanMemory(TinyRun(), TinyModel(), CpuOptions(1, Sharding::kZero1));
  // 64 blocks x 16 tokens x 2 layers x (keys, values) x 16 x 4 B.
  EXPECT_EQ(Item(small, "learner", "KV cache"), 64 * 16 * 2 * 2 * 16 * 4);
  // 8 tasks x 8 episodes x 1024 tokens = 4096 blocks: 64 doubled 6 times.
  ClinrlConfig run = TinyRun();
  run.rollout.tasks_per_step = 8;
  run.rollout.group_size = 8;
  run.rollout.max_tokens_per_episode = 1024;
  const MemoryPlan big =
      PlanMemory(run, TinyModel(), CpuOptions(1, Sharding::kZero1));
  EXPECT_EQ(Item(big, "learner", "KV cache"), 4096 * 16 * 2 * 2 * 16 * 4);
}

TEST(MemoryPlanTest, PeakIsResidentPlusTheLargestPhase) {
  const MemoryPlan plan =
      PlanMemory(TinyRun(), TinyModel(), CpuOptions(1, Sharding::kZero1));
  const RoleMemory& learner = plan.roles.front();
  int64_t expected = 0;
  for (const MemoryItem& item : learner.items) {
    if (item.phases & learner.peak_phase) expected += item.bytes;
  }
  EXPECT_EQ(learner.peak_bytes, expected);
  for (unsigned phase = 1; phase < kPhaseAll; phase <<= 1) {
    int64_t sum = 0;
    for (const MemoryItem& item : learner.items) {
      if (item.phases & phase) sum += item.bytes;
    }
    EXPECT_LE(sum, learner.peak_bytes) << PhaseName(phase);
  }
}

TEST(MemoryPlanTest, KlReferenceIsASecondCopyOfTheWeights) {
  ClinrlConfig run = TinyRun();
  run.trainer.kl_coef = 0.01;
  const MemoryPlan plan =
      PlanMemory(run, TinyModel(), CpuOptions(2, Sharding::kZero3));
  EXPECT_EQ(Item(plan, "learner", "KL reference model"), kParams / 2 * 4);
}

TEST(MemoryPlanTest, VerdictNamesTheLargestItemAndAFix) {
  // Packed, so that the padded batch's masks are not the largest item.
  ClinrlConfig run = TinyRun();
  run.rollout.max_tokens_per_episode = 1024;
  run.trainer.micro_batch = 4;
  run.trainer.packing = true;
  MemoryPlanOptions options = CpuOptions(1, Sharding::kZero1);
  const MemoryPlan roomy = PlanMemory(run, TinyModel(), options);
  EXPECT_TRUE(roomy.fits);
  EXPECT_EQ(MemoryVerdict(roomy).rfind("fits: ", 0), 0u)
      << MemoryVerdict(roomy);

  // A device below the plain peak on which the checkpointed one leaves
  // more than the 10% headroom a fix must leave.
  run.trainer.activation_checkpointing = true;
  const int64_t checkpointed =
      PlanMemory(run, TinyModel(), options).roles.front().peak_bytes;
  run.trainer.activation_checkpointing = false;
  options.cluster.device_bytes = checkpointed * 100 / 85;
  const MemoryPlan tight = PlanMemoryWithFix(run, TinyModel(), options);
  ASSERT_FALSE(tight.fits);
  const RoleMemory& learner = tight.roles.front();
  ASSERT_GE(learner.largest, 0);
  EXPECT_EQ(learner.items[learner.largest].name, "activations (every layer)");
  const std::string verdict = MemoryVerdict(tight);
  EXPECT_NE(verdict.find("largest item: activations (every layer)"),
            std::string::npos)
      << verdict;
  EXPECT_EQ(tight.fix.rfind("trainer.activation_checkpointing=true", 0), 0u)
      << tight.fix;
}

TEST(MemoryPlanTest, TooFewGpusDoesNotFit) {
  ClinrlConfig run = TinyRun();
  run.distributed.rollout_ranks = 2;
  MemoryPlanOptions options = CpuOptions(2, Sharding::kZero1);
  options.cluster.cpu = false;
  options.cluster.gpus_per_node = 3;
  const MemoryPlan plan = PlanMemory(run, TinyModel(), options);
  EXPECT_FALSE(plan.fits);
  EXPECT_NE(plan.problem.find("need 4 GPUs, the cluster has 3"),
            std::string::npos)
      << plan.problem;
}

TEST(MemoryPlanTest, ShardingNamesAreChecked) {
  EXPECT_EQ(ParseSharding("zero3", "--sharding"), Sharding::kZero3);
  try {
    ParseSharding("zero2", "--sharding");
    FAIL() << "expected a BadRequest";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("--sharding: got 'zero2', expected "
                                         "zero1"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace clinrl::trainer
