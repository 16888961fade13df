#include "trainer/memory_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "policy/lora.h"
#include "policy/tokenizer.h"

namespace clinrl::trainer {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// policy/paged_kv_cache.h via rollout's EngineOptions: 16-token blocks in a
// pool that starts at 64 blocks and doubles when it runs out.
constexpr int64_t kKvBlockTokens = 16;
constexpr int64_t kKvInitialBlocks = 64;
// trainer/run_evaluation.cc: at most this many evaluation episodes at once.
constexpr int64_t kEvalChunk = 64;
// policy/head_log_probs.cc: a chunk's logits are about 64 MiB of floats,
// at least 256 tokens.
constexpr int64_t kHeadChunkBytes = int64_t{64} << 20;
constexpr int64_t kHeadMinChunkTokens = 256;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string GiB(int64_t bytes) {
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / kGiB);
}

int64_t DtypeBytes(const std::string& dtype) {
  return dtype == "float32" ? 4 : 2;
}

// The numbers every formula shares, derived once from the config, the
// model and the cluster.
struct PlanShape {
  const ClinrlConfig* config = nullptr;
  MemoryPlanOptions options;
  int64_t ranks = 1, workers = 0;
  int64_t hidden = 0, inter = 0, layers = 0, q = 0, kv = 0, vocab = 0;
  int64_t kv_heads = 0, head_dim = 0;
  int64_t params = 0;        // the model's
  int64_t layer_params = 0;  // one decoder layer's, norms included
  int64_t head_params = 0;   // the output head's weight (tied or not)
  int64_t adapters = 0, layer_adapters = 0;
  int64_t trainable = 0;
  int64_t largest_trainable = 0;  // elements of the largest trainable tensor
  bool lora = false, bf16 = false, checkpointing = false, packing = false;
  bool zero3 = false, reference = false, grpo = false, qk_norm = false;
  bool tied = true;
  int64_t lora_token_elements = 0;  // saved per token per layer by adapters
  int64_t weight_bytes = 4;         // policy.dtype
  int64_t grad_bytes = 4;     // gradients and moments: the trainable dtype
  int64_t compute_bytes = 4;  // bf16 products, or the weights' dtype
  int64_t tokens = 0;         // the longest training sequence
  int64_t micro_sequences = 0, micro_tokens = 0, share_tokens = 0;
};

// A projection's (in, out) features, by its Hugging Face name.
std::pair<int64_t, int64_t> ProjectionShape(const policy::ModelConfig& m,
                                            const std::string& name) {
  const int64_t q = m.num_attention_heads * m.HeadDim();
  const int64_t kv = m.num_key_value_heads * m.HeadDim();
  if (name == "q_proj") return {m.hidden_size, q};
  if (name == "k_proj" || name == "v_proj") return {m.hidden_size, kv};
  if (name == "o_proj") return {q, m.hidden_size};
  if (name == "gate_proj" || name == "up_proj") {
    return {m.hidden_size, m.intermediate_size};
  }
  if (name == "down_proj") return {m.intermediate_size, m.hidden_size};
  throw ConfigError(fmt::format(
      "policy.lora.target_modules: got '{}', expected any of: q_proj, "
      "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",
      name));
}

// Elements of the largest adapter matrix: A [rank, in] or B [out, rank].
int64_t LargestAdapter(const policy::ModelConfig& m, const LoraConfig& lora) {
  int64_t largest = 0;
  for (const std::string& name : lora.target_modules) {
    const auto [in, out] = ProjectionShape(m, name);
    largest = std::max(largest, lora.rank * std::max(in, out));
  }
  return largest;
}

// Sequences in one learner rank's share of a step's batch: the GRPO batch
// (tasks x group) or the SFT batch, whichever is larger.
int64_t GlobalBatchSequences(const ClinrlConfig& c) {
  int64_t sequences = 0;
  for (const std::string& stage : c.trainer.stages) {
    if (stage == "grpo") {
      sequences =
          std::max(sequences, c.rollout.tasks_per_step * c.rollout.group_size);
    } else if (stage == "sft") {
      sequences = std::max(sequences, c.trainer.sft.batch_size);
    }
  }
  return std::max<int64_t>(sequences, 1);
}

void SetModelNumbers(const policy::ModelConfig& m, PlanShape* s) {
  s->hidden = m.hidden_size;
  s->inter = m.intermediate_size;
  s->layers = m.num_hidden_layers;
  s->head_dim = m.HeadDim();
  s->kv_heads = m.num_key_value_heads;
  s->q = m.num_attention_heads * s->head_dim;
  s->kv = s->kv_heads * s->head_dim;
  s->vocab = m.vocab_size;
  s->qk_norm = m.qk_norm;
  s->tied = m.tie_word_embeddings;
  s->params = m.ParameterCount();
  s->layer_params = m.LayerParameterCount() / std::max<int64_t>(1, s->layers) +
                    2 * s->hidden + (m.qk_norm ? 2 * s->head_dim : 0);
  s->head_params = s->vocab * s->hidden;
}

PlanShape MakeShape(const ClinrlConfig& c, const policy::ModelConfig& m,
                    const MemoryPlanOptions& options) {
  PlanShape s;
  s.config = &c;
  s.options = options;
  s.ranks = options.learner_ranks > 0 ? options.learner_ranks
                                      : c.distributed.learner_ranks;
  s.workers = c.distributed.rollout_ranks;
  SetModelNumbers(m, &s);
  const LoraConfig& lora = c.policy.lora;
  s.lora = lora.rank > 0;
  s.adapters = LoraAdapterParameters(m, lora);
  s.layer_adapters = s.adapters / std::max<int64_t>(1, s.layers);
  s.weight_bytes = DtypeBytes(c.policy.dtype);
  // policy/lora.h AttachLora: adapters take the base's dtype, and so do
  // their gradients and moments.
  s.grad_bytes = s.weight_bytes;
  s.trainable = s.lora ? s.adapters : s.params;
  // PEFT's LoRA forward saves A x (rank values) per target and, with
  // dropout, the dropped input (in values).
  for (const std::string& name :
       s.lora ? lora.target_modules : std::vector<std::string>{}) {
    const int64_t in = ProjectionShape(m, name).first;
    s.lora_token_elements += lora.rank + (lora.dropout > 0 ? in : 0);
  }
  s.largest_trainable =
      s.lora ? LargestAdapter(m, lora)
             : std::max({s.head_params, s.hidden * s.inter, s.hidden * s.q});
  s.bf16 = c.trainer.precision == "bf16";
  s.compute_bytes = s.bf16 ? 2 : s.weight_bytes;
  s.checkpointing = c.trainer.activation_checkpointing;
  s.packing = c.trainer.packing;
  s.zero3 = options.sharding == Sharding::kZero3;
  s.grpo = std::find(c.trainer.stages.begin(), c.trainer.stages.end(),
                     "grpo") != c.trainer.stages.end();
  s.reference = s.grpo && (c.trainer.kl_coef > 0 || c.trainer.kl_in_reward > 0);
  s.tokens =
      std::min(c.rollout.max_tokens_per_episode, m.max_position_embeddings);
  const int64_t share = CeilDiv(GlobalBatchSequences(c), s.ranks);
  s.micro_sequences = std::min(c.trainer.micro_batch, share);
  s.micro_tokens = s.micro_sequences * s.tokens;
  s.share_tokens = share * s.tokens;
  return s;
}

void Add(RoleMemory* role, std::string name, std::string kind, int64_t bytes,
         unsigned phases, std::string formula) {
  if (bytes <= 0) return;
  role->items.push_back(
      {std::move(name), std::move(kind), bytes, phases, std::move(formula)});
}

std::string ShareText(int64_t n) {
  return n > 1 ? fmt::format(", 1/{} per rank", n) : "";
}

// Weights, adapters and the KL reference of a learner rank.
void AddLearnerWeights(const PlanShape& s, RoleMemory* role) {
  const int64_t n = s.zero3 ? s.ranks : 1;
  const std::string& dtype = s.config->policy.dtype;
  Add(role, s.lora ? "base weights (frozen)" : "weights", "weights",
      CeilDiv(s.params, n) * s.weight_bytes, kPhaseAll,
      fmt::format("{} parameters x {} B ({}){}", s.params, s.weight_bytes,
                  dtype, ShareText(n)));
  Add(role, "LoRA adapters", "weights", CeilDiv(s.adapters, n) * s.weight_bytes,
      kPhaseAll,
      fmt::format("{} layers x rank {} x (in + out) of {} projections = {} "
                  "parameters x {} B{}",
                  s.layers, s.config->policy.lora.rank,
                  s.config->policy.lora.target_modules.size(), s.adapters,
                  s.weight_bytes, ShareText(n)));
  if (s.reference) {
    // trainer/run_checkpoint.cc MakeReference: a second model of the same
    // options (adapters included), frozen.
    Add(role, "KL reference model", "reference",
        CeilDiv(s.params + s.adapters, n) * s.weight_bytes, kPhaseAll,
        fmt::format("{} parameters x {} B{} (trainer.kl_coef or "
                    "kl_in_reward > 0)",
                    s.params + s.adapters, s.weight_bytes, ShareText(n)));
  }
}

// Gradients and AdamW's moments: of the adapters only under LoRA.
void AddLearnerOptimizerState(const PlanShape& s, RoleMemory* role) {
  const std::string what =
      s.lora ? "adapter parameters" : "trainable parameters";
  const int64_t grad_share = s.zero3 ? s.ranks : 1;
  Add(role, "gradients", "gradients",
      CeilDiv(s.trainable, grad_share) * s.grad_bytes,
      kPhaseTrain | kPhaseOptimizer,
      fmt::format("{} {} x {} B{} (from the first backward to the end of "
                  "the step)",
                  s.trainable, what, s.grad_bytes, ShareText(grad_share)));
  // AdamW (trainer/adamw.cc) keeps exp_avg and exp_avg_sq in the
  // parameter's dtype; ShardedAdamW keeps its shard of ceil(numel / N).
  Add(role, "AdamW moments", "optimizer",
      2 * CeilDiv(s.trainable, s.ranks) * s.grad_bytes, kPhaseAll,
      fmt::format("2 x {} {} x {} B{}", s.trainable, what, s.grad_bytes,
                  ShareText(s.ranks)));
}

// Transient buffers of the optimizer step, as the code allocates them.
void AddOptimizerBuffers(const PlanShape& s, RoleMemory* role) {
  if (s.ranks == 1) {
    // ClipGradNorm (trainer/adamw.cc): each gradient to float64, squared.
    Add(role, "optimizer step buffers", "buffers", 16 * s.largest_trainable,
        kPhaseOptimizer,
        fmt::format("16 B x {} elements of the largest trainable tensor "
                    "(gradient norm in float64)",
                    s.largest_trainable));
    return;
  }
  const int64_t shard = CeilDiv(s.trainable, s.ranks);
  if (s.zero3) {
    // Planned as FSDP steps: AdamW's temporaries (the square root and the
    // division) over the shard.
    Add(role, "optimizer step buffers", "buffers", 2 * shard * s.grad_bytes,
        kPhaseOptimizer,
        fmt::format("2 x {} shard elements x {} B (AdamW temporaries)", shard,
                    s.grad_bytes));
    return;
  }
  // trainer/data_parallel.cc: the whole flat gradient in reduce_dtype, the
  // reduced shard and its float64 square; then sharded_adamw.cc gathers
  // every rank's updated shard into one flat parameter vector.
  const int64_t padded = shard * s.ranks;
  const int64_t wire = s.config->trainer.reduce_dtype == "bf16" ? 2 : 4;
  const int64_t reduce = padded * wire + shard * (wire + 16);
  const int64_t gather = (padded + shard) * s.grad_bytes;
  Add(role, "ZeRO-1 flat buffers", "buffers", std::max(reduce, gather),
      kPhaseOptimizer,
      fmt::format("max(reduce-scatter: {} x {} B + shard {} x {} B, "
                  "all-gather: ({} + {}) x {} B)",
                  padded, wire, shard, wire + 16, padded, shard, s.grad_bytes));
}

// Parameter copies in the compute dtype while a micro-batch trains. ZeRO-3
// (trainer/zero3.h) keeps the root unit (embedding, final norm, an untied
// head) gathered for the step and gathers one decoder layer at a time, in
// the weights' dtype (no prefetch: the collectives block); otherwise, under
// bf16 over float32 weights,
// autocast's cast cache keeps a bfloat16 copy of every trainable weight for
// the whole forward (policy/precision.cc: the cache lives as long as the
// outermost guard) and the products save it for backward. Frozen weights
// (LoRA's base) are not cached: cast per use, and kept only where a
// product saves them for backward.
void AddTrainingCopies(const PlanShape& s, RoleMemory* role) {
  if (s.zero3 && s.ranks > 1) {
    const int64_t root =
        s.vocab * s.hidden + s.hidden + (s.tied ? 0 : s.head_params);
    Add(role, "ZeRO-3 gathered root and layer", "weights",
        (root + s.layer_params) * s.weight_bytes, kPhaseTrain,
        fmt::format("({} root + {} layer) parameters x {} B: the root for "
                    "the step, one layer while it computes",
                    root, s.layer_params, s.weight_bytes));
    Add(role, "ZeRO-3 layer gradient before reduce-scatter", "gradients",
        (root + s.layer_params) * s.grad_bytes, kPhaseBackward,
        fmt::format("({} + {}) parameters x {} B (the root's until the step "
                    "ends)",
                    root, s.layer_params, s.grad_bytes));
    return;
  }
  if (!s.bf16 || s.weight_bytes == 2) return;
  const int64_t all = s.layers * s.layer_params;
  if (s.lora) {
    const int64_t n = s.checkpointing ? s.layer_params : all + s.head_params;
    Add(role, "bf16 casts of the frozen weights", "compute_copy", 2 * n,
        kPhaseTrain,
        fmt::format("{} parameters x 2 B ({} saved for backward)", n,
                    s.checkpointing ? "one recomputed layer's" : "every one"));
    return;
  }
  if (!s.checkpointing) {
    Add(role, "bf16 weight copies (autocast cache)", "compute_copy",
        2 * (all + s.head_params), kPhaseTrain,
        fmt::format("({} layers x {} + head {}) parameters x 2 B", s.layers,
                    s.layer_params, s.head_params));
    return;
  }
  // Checkpointed: the forward ends with every layer's copy cached; the
  // backward recomputes under a guard of its own, one layer at a time.
  Add(role, "bf16 weight copies (autocast cache)", "compute_copy", 2 * all,
      kPhaseForward,
      fmt::format("{} layers x {} parameters x 2 B, until the forward ends",
                  s.layers, s.layer_params));
  Add(role, "bf16 copy of the recomputed layer", "compute_copy",
      2 * s.layer_params, kPhaseBackward,
      fmt::format("{} parameters x 2 B", s.layer_params));
}

// Bytes one token leaves saved for backward in one decoder layer, tensor by
// tensor as policy/transformer.cc computes it (DecoderLayerImpl::forward):
//  - float32 residual stream and RMSNorm: the layer's input, the normalised
//    input and the norm's output, for attention and for the MLP: 6 h;
//  - under bf16 autocast, the bfloat16 casts of both norm outputs: 2 h;
//  - attention: q, k and v, the rotary's rotate-half copies and results of
//    q and k, the attention output and its reshaped copy: 5 q + 4 kv
//    (a fused SDPA kernel keeps no T x T scores);
//  - MLP: gate, up, silu(gate) kept by the in-place product, the product:
//    4 I; Qwen3's q/k norms add 2 (q + kv); LoRA adds its own.
int64_t LayerBytesPerToken(const PlanShape& s) {
  const int64_t residual = 6 * s.hidden * 4 + (s.bf16 ? 2 * s.hidden * 2 : 0);
  int64_t compute = 5 * s.q + 4 * s.kv + 4 * s.inter + s.lora_token_elements;
  if (s.qk_norm) compute += 2 * (s.q + s.kv);
  return residual + compute * s.compute_bytes;
}

void AddLayerActivations(const PlanShape& s, RoleMemory* role) {
  const int64_t per_token = LayerBytesPerToken(s);
  // The final norm's input, normalised input and output, float32.
  const int64_t final_norm = 3 * s.hidden * 4 * s.micro_tokens;
  const std::string tokens =
      fmt::format("{} sequences x {} tokens", s.micro_sequences, s.tokens);
  if (!s.checkpointing) {
    Add(role, "activations (every layer)", "activations",
        s.layers * s.micro_tokens * per_token + final_norm, kPhaseTrain,
        fmt::format("{} x {} layers x {} B per token per layer, + final norm "
                    "12 h B per token",
                    tokens, s.layers, per_token));
  } else {
    Add(role, "layer inputs (checkpointed)", "activations",
        s.layers * s.micro_tokens * s.hidden * 4 + final_norm, kPhaseTrain,
        fmt::format("{} x {} layers x {} hidden x 4 B, + final norm", tokens,
                    s.layers, s.hidden));
    Add(role, "activations of the recomputed layer", "activations",
        s.micro_tokens * per_token, kPhaseBackward,
        fmt::format("{} x {} B per token", tokens, per_token));
  }
  // What a layer's backward allocates beside what it saved: the gradients
  // flowing through its MLP and residual, and under checkpointing its
  // parameters' gradients before they are added to .grad().
  const int64_t layer_trainable = s.lora ? s.layer_adapters : s.layer_params;
  const int64_t flowing =
      s.micro_tokens * (2 * s.inter + 2 * s.hidden) * s.compute_bytes;
  const int64_t param_grads =
      s.checkpointing ? 2 * layer_trainable * s.grad_bytes : 0;
  Add(role, "backward workspace (one layer)", "workspace",
      flowing + param_grads, kPhaseBackward,
      fmt::format("{} x (2 I + 2 h) x {} B{}", tokens, s.compute_bytes,
                  s.checkpointing
                      ? fmt::format(" + 2 x {} layer gradients x {} B",
                                    layer_trainable, s.grad_bytes)
                      : ""));
}

// The output head: whole logits without checkpointing (policy_trainer.cc
// TargetLogProbs: logits, float32 log-softmax and softmax for the entropy,
// and two gradients of that size in the head's backward), else a chunk of
// tokens at a time (policy/head_log_probs.cc).
void AddHead(const PlanShape& s, RoleMemory* role) {
  if (!s.checkpointing) {
    Add(role, "logits (whole)", "logits",
        s.micro_tokens * s.vocab * (s.compute_bytes + 16), kPhaseTrain,
        fmt::format("{} tokens x {} vocab x ({} + 4 x 4) B", s.micro_tokens,
                    s.vocab, s.compute_bytes));
    return;
  }
  const int64_t chunk =
      std::min(s.micro_tokens,
               std::max(kHeadMinChunkTokens, kHeadChunkBytes / (s.vocab * 4)));
  const int64_t chunk_bytes = chunk * s.vocab * (12 + (s.bf16 ? 2 : 0));
  const int64_t weight_cast = s.bf16 ? s.head_params * 2 : 0;
  const int64_t head_grads = s.head_params * 4 + s.micro_tokens * s.hidden * 4;
  // Its backward holds the most; the forward's chunks come after the
  // layers' autocast cache is gone.
  Add(role, "logits (chunked)", "logits",
      chunk_bytes + weight_cast + head_grads, kPhaseBackward,
      fmt::format("{} tokens x {} vocab x {} B per chunk, + head weight cast "
                  "{} B, + float32 head and hidden gradients {} B",
                  chunk, s.vocab, 12 + (s.bf16 ? 2 : 0), weight_cast,
                  head_grads));
}

// Padded micro-batches carry a [b, 1, T, T] boolean mask, which SDPA turns
// into a float mask per layer and saves for backward; packed rows use the
// variable-length path and have none.
void AddMasksAndBatch(const PlanShape& s, RoleMemory* role) {
  if (!s.packing) {
    const int64_t saved_layers = s.checkpointing ? 1 : s.layers;
    Add(role, "attention masks (padded)", "masks",
        s.micro_sequences * s.tokens * s.tokens * (1 + 4 * saved_layers),
        kPhaseTrain,
        fmt::format("{} x {}^2 x (1 + 4 B x {} layers)", s.micro_sequences,
                    s.tokens, saved_layers));
  }
  // policy_trainer.cc Split: ids, masks, log-probs and advantages of the
  // rank's whole share (about 56 B a token), and a micro-batch's loss terms
  // (about 20 floats a token).
  Add(role, "batch tensors and loss terms", "batch",
      s.share_tokens * 56 + s.micro_tokens * 80, kPhaseTrain | kPhaseOptimizer,
      fmt::format("{} share tokens x 56 B + {} micro-batch tokens x 80 B",
                  s.share_tokens, s.micro_tokens));
}

// Blocks the paged KV pool holds for `episodes` sequences of `tokens`: it
// starts at 64 blocks and doubles until every block fits.
int64_t KvPoolBlocks(int64_t episodes, int64_t tokens) {
  const int64_t needed = episodes * CeilDiv(tokens, kKvBlockTokens);
  int64_t blocks = kKvInitialBlocks;
  while (blocks < needed) blocks *= 2;
  return blocks;
}

// The weights generation adds. Under ZeRO-3 learner rank 0 keeps a whole
// model (PolicyTrainerOptions::keep_full_model) to sample, evaluate and
// checkpoint with, refreshed layer by layer after each batch. Every layer keeps
// its q/k/v and gate/up weights concatenated in the compute dtype once it has
// generated (policy/fused_linear.h: rebuilt when the weights change, never
// freed), and under bf16 over float32 weights autocast caches bfloat16 casts of
// o_proj, down_proj and the head while a step generates (frozen LoRA bases are
// cast per use, not cached).
void AddGenerationWeights(const PlanShape& s, bool learner, RoleMemory* role) {
  // Kept in bfloat16 under bf16 (the shards hold the float32 masters), so
  // generation casts nothing more.
  const bool zero3_copy = learner && s.zero3 && s.ranks > 1;
  if (zero3_copy) {
    Add(role, "whole model of learner rank 0 (ZeRO-3)", "weights",
        s.params * s.compute_bytes, kPhaseAll,
        fmt::format("{} parameters x {} B (rank 0 samples, evaluates and "
                    "checkpoints with it)",
                    s.params, s.compute_bytes));
  }
  const int64_t fused =
      s.hidden * (s.q + 2 * s.kv) + (s.q + 2 * s.kv) + 2 * s.hidden * s.inter;
  Add(role, "fused q/k/v and gate/up weights", "compute_copy",
      s.layers * fused * s.compute_bytes, kPhaseAll,
      fmt::format("{} layers x {} parameters x {} B (kept once generated)",
                  s.layers, fused, s.compute_bytes));
  if (!s.bf16 || s.weight_bytes == 2 || zero3_copy) return;
  const int64_t unfused = s.q * s.hidden + s.inter * s.hidden;
  const int64_t cast = (s.lora ? unfused : s.layers * unfused) + s.head_params;
  Add(role, "bf16 casts of o/down/head (generation)", "compute_copy", 2 * cast,
      kPhaseRollout, fmt::format("{} parameters x 2 B", cast));
}

// Generation of `episodes` at once on this process: the KV pool, one
// prefill, the sampling call, and the weights in the compute dtype.
void AddGeneration(const PlanShape& s, int64_t episodes, bool learner,
                   RoleMemory* role) {
  const int64_t kv_bytes = s.bf16 ? 2 : s.weight_bytes;
  const int64_t blocks = KvPoolBlocks(episodes, s.tokens);
  Add(role, "KV cache", "kv_cache",
      blocks * kKvBlockTokens * s.layers * 2 * s.kv * kv_bytes, kPhaseRollout,
      fmt::format("{} episodes x {} tokens: pool of {} blocks x {} tokens x "
                  "{} layers x 2 x {} kv heads x {} head dim x {} B",
                  episodes, s.tokens, blocks, kKvBlockTokens, s.layers,
                  s.kv_heads, s.head_dim, kv_bytes));
  // The first turn prefills every episode's prompt in one forward; its
  // tokens are at most what the generated tokens leave of an episode.
  const RolloutConfig& r = s.config->rollout;
  const int64_t prompt = std::max(
      r.max_tokens_per_turn, s.tokens - r.max_turns * r.max_tokens_per_turn);
  const int64_t prefill = episodes * std::min(prompt, s.tokens);
  Add(role, "prefill activations (one layer)", "generation",
      prefill * (4 * s.hidden * 4 +
                 (2 * s.q + 3 * s.kv + 3 * s.inter) * s.compute_bytes),
      kPhaseRollout,
      fmt::format("{} episodes x {} prompt tokens x (4 h x 4 B + (2 q + 3 kv "
                  "+ 3 I) x {} B)",
                  episodes, std::min(prompt, s.tokens), s.compute_bytes));
  Add(role, "sampling logits", "generation", episodes * s.vocab * 24,
      kPhaseRollout,
      fmt::format("{} episodes x {} vocab x 24 B (float32 logits, scaled, "
                  "probabilities; sorted values and int64 order)",
                  episodes, s.vocab));
  AddGenerationWeights(s, learner, role);
}

int64_t RuntimeBytes(const PlanShape& s) {
  if (s.options.runtime_bytes >= 0) return s.options.runtime_bytes;
  return s.options.cluster.cpu ? kCpuRuntimeBytes : kCudaRuntimeBytes;
}

void AddRuntime(const PlanShape& s, RoleMemory* role) {
  Add(role,
      s.options.cluster.cpu ? "LibTorch runtime (resident)"
                            : "CUDA context and workspaces",
      "runtime", RuntimeBytes(s), kPhaseAll,
      s.options.cluster.cpu
          ? "measured: clinrl bench learner --quick less its model"
          : "CUDA context, cuBLAS and NCCL workspaces (typical)");
}

RoleMemory LearnerRole(const PlanShape& s) {
  RoleMemory role;
  role.role = "learner";
  role.processes = s.ranks;
  AddLearnerWeights(s, &role);
  AddLearnerOptimizerState(s, &role);
  AddTrainingCopies(s, &role);
  AddLayerActivations(s, &role);
  AddHead(s, &role);
  AddMasksAndBatch(s, &role);
  AddOptimizerBuffers(s, &role);
  // Rank 0 plays the evaluation episodes (run_evaluation.cc, at most 64 at
  // once), and the training episodes when no rollout worker does
  // (LocalEpisodeSource: a step's tasks x group at once).
  const EvalConfig& eval = s.config->eval;
  const int64_t eval_episodes = std::min(
      kEvalChunk, std::max(eval.validation_episodes, eval.test_episodes));
  const RolloutConfig& r = s.config->rollout;
  const int64_t train_episodes =
      s.workers == 0 && s.grpo ? r.tasks_per_step * r.group_size : 0;
  AddGeneration(s, std::max(eval_episodes, train_episodes), true, &role);
  if (s.workers > 0 && s.options.cluster.cpu) {
    // distributed/weight_publisher.h: Publish copies the weights once.
    Add(&role, "published weights snapshot", "weights",
        (s.params + s.adapters) * s.weight_bytes, kPhaseAll,
        fmt::format("{} parameters x {} B (+ adapters), host memory", s.params,
                    s.weight_bytes));
  }
  AddRuntime(s, &role);
  role.note = s.ranks > 1 ? "rank 0 shown: it also generates episodes"
                          : "it also generates episodes";
  return role;
}

RoleMemory RolloutRole(const PlanShape& s) {
  RoleMemory role;
  role.role = "rollout";
  role.processes = s.workers;
  const int64_t weights = (s.params + s.adapters) * s.weight_bytes;
  Add(&role, "weights", "weights", weights, kPhaseAll,
      fmt::format("({} + {} adapter) parameters x {} B ({})", s.params,
                  s.adapters, s.weight_bytes, s.config->policy.dtype));
  // rollout_service.cc: one task group (G episodes) at a time.
  AddGeneration(s, s.config->rollout.group_size, false, &role);
  if (s.options.cluster.cpu) {
    // The received frames (host memory) while they are copied in.
    Add(&role, "weights message being received", "weights", weights,
        kPhaseWeights, "one more copy of the weights");
  }
  AddRuntime(s, &role);
  role.note = "one task group at a time";
  return role;
}

// Env and reward servers hold no model: on a GPU cluster they are host
// processes; on the CPU they share the node's RAM.
RoleMemory ServerRole(const PlanShape& s, const std::string& name,
                      int64_t processes) {
  RoleMemory role;
  role.role = name;
  role.processes = processes;
  role.on_device = s.options.cluster.cpu;
  Add(&role, "clinrl process (resident)", "runtime", kCpuRuntimeBytes,
      kPhaseAll, "as the LibTorch runtime on the CPU");
  role.note = role.on_device ? "no model" : "no model; runs on the host";
  return role;
}

void FinishRole(RoleMemory* role, int64_t device_bytes) {
  int64_t resident = 0;
  for (const MemoryItem& item : role->items) {
    if (item.phases == kPhaseAll) resident += item.bytes;
  }
  role->peak_bytes = resident;
  role->peak_phase = kPhaseAll;
  for (unsigned phase = 1; phase < kPhaseAll; phase <<= 1) {
    int64_t sum = 0;
    for (const MemoryItem& item : role->items) {
      if (item.phases & phase) sum += item.bytes;
    }
    if (sum > role->peak_bytes) {
      role->peak_bytes = sum;
      role->peak_phase = phase;
    }
  }
  role->largest = -1;
  for (size_t i = 0; i < role->items.size(); ++i) {
    const MemoryItem& item = role->items[i];
    if (!(item.phases & role->peak_phase)) continue;
    if (role->largest < 0 || item.bytes > role->items[role->largest].bytes) {
      role->largest = static_cast<int>(i);
    }
  }
  role->fits = !role->on_device || role->peak_bytes <= device_bytes;
}

// Whether every role fits, and if not, what: the first role over its
// device, the node's RAM on the CPU, or the count of GPUs.
void JudgePlan(MemoryPlan* plan) {
  const ClusterShape& cluster = plan->options.cluster;
  const int64_t device = cluster.device_bytes;
  const RoleMemory* worst = nullptr;
  for (const RoleMemory& role : plan->roles) {
    if (role.on_device && (!worst || role.peak_bytes > worst->peak_bytes)) {
      worst = &role;
    }
    if (cluster.cpu) {
      plan->node_bytes +=
          role.peak_bytes * CeilDiv(role.processes, cluster.nodes);
    }
  }
  if (worst && worst->largest >= 0) {
    const MemoryItem& item = worst->items[worst->largest];
    plan->largest = fmt::format("{} of the {} ({})", item.name, worst->role,
                                GiB(item.bytes));
  }
  plan->fits = true;
  if (!cluster.cpu) {
    const int64_t gpus = cluster.nodes * cluster.gpus_per_node;
    const int64_t needed = plan->learner_ranks + plan->rollout_workers;
    if (needed > gpus) {
      plan->fits = false;
      plan->problem = fmt::format(
          "{} learner ranks + {} rollout workers need {} GPUs, the cluster "
          "has {}",
          plan->learner_ranks, plan->rollout_workers, needed, gpus);
      return;
    }
  }
  for (const RoleMemory& role : plan->roles) {
    if (role.fits) continue;
    plan->fits = false;
    plan->problem = fmt::format("the {} needs {} of {} (its {} peak)",
                                role.role, GiB(role.peak_bytes), GiB(device),
                                PhaseName(role.peak_phase));
    return;
  }
  if (cluster.cpu && plan->node_bytes > device) {
    plan->fits = false;
    plan->problem =
        fmt::format("the processes of a node need {} together, the node has {}",
                    GiB(plan->node_bytes), GiB(device));
  }
}

// Items, peaks and the verdict, with no fix yet (memory_fix.h).
MemoryPlan PlanRoles(const ClinrlConfig& config,
                     const policy::ModelConfig& model,
                     const MemoryPlanOptions& options) {
  const PlanShape s = MakeShape(config, model, options);
  if (s.ranks < 1) {
    throw ConfigError(
        fmt::format("learner ranks: got {}, expected at least 1", s.ranks));
  }
  MemoryPlan plan;
  plan.model = model;
  plan.options = options;
  plan.learner_ranks = s.ranks;
  plan.rollout_workers = s.workers;
  plan.parameters = s.params;
  plan.adapter_parameters = s.adapters;
  plan.sequence_tokens = s.tokens;
  plan.micro_batch_sequences = s.micro_sequences;
  plan.roles.push_back(LearnerRole(s));
  if (s.workers > 0) plan.roles.push_back(RolloutRole(s));
  const DistributedConfig& d = config.distributed;
  if (d.env_server_ranks > 0) {
    plan.roles.push_back(ServerRole(s, "env_server", d.env_server_ranks));
  }
  if (d.reward_server_ranks > 0) {
    plan.roles.push_back(ServerRole(s, "reward_server", d.reward_server_ranks));
  }
  for (RoleMemory& role : plan.roles) {
    FinishRole(&role, options.cluster.device_bytes);
  }
  JudgePlan(&plan);
  return plan;
}

nlohmann::json RoleToJson(const RoleMemory& role) {
  nlohmann::json items = nlohmann::json::array();
  for (const MemoryItem& item : role.items) {
    items.push_back({{"name", item.name},
                     {"kind", item.kind},
                     {"bytes", item.bytes},
                     {"gib", static_cast<double>(item.bytes) / kGiB},
                     {"phases", PhaseName(item.phases)},
                     {"formula", item.formula}});
  }
  return {{"role", role.role},
          {"processes", role.processes},
          {"on_device", role.on_device},
          {"note", role.note},
          {"peak_bytes", role.peak_bytes},
          {"peak_gib", static_cast<double>(role.peak_bytes) / kGiB},
          {"peak_phase", PhaseName(role.peak_phase)},
          {"fits", role.fits},
          {"largest", role.largest >= 0 ? role.items[role.largest].name : ""},
          {"items", items}};
}

}  // namespace

MemoryPlan PlanMemory(const ClinrlConfig& config,
                      const policy::ModelConfig& model,
                      const MemoryPlanOptions& options) {
  return PlanRoles(config, model, options);
}

std::string PhaseName(unsigned phases) {
  if ((phases & kPhaseAll) == kPhaseAll) return "all";
  // Forward and backward together read as "train".
  static const std::pair<unsigned, const char*> kNames[] = {
      {kPhaseTrain, "train"},       {kPhaseForward, "forward"},
      {kPhaseBackward, "backward"}, {kPhaseOptimizer, "optimizer"},
      {kPhaseRollout, "rollout"},   {kPhaseWeights, "weights"}};
  std::string out;
  for (const auto& [bits, name] : kNames) {
    if ((phases & bits) != bits) continue;
    phases &= ~bits;
    if (!out.empty()) out += "+";
    out += name;
  }
  return out;
}

int64_t LoraAdapterParameters(const policy::ModelConfig& model,
                              const LoraConfig& lora) {
  if (lora.rank <= 0) return 0;
  // The run's own checks of policy.lora, with its messages.
  policy::LoraOptions::FromConfig(lora, 0);
  int64_t per_layer = 0;
  for (const std::string& name : lora.target_modules) {
    const auto [in, out] = ProjectionShape(model, name);
    per_layer += lora.rank * (in + out);
  }
  return per_layer * model.num_hidden_layers;
}

policy::ModelConfig PlanModelConfig(const PolicyConfig& policy) {
  if (!policy.model_dir.empty()) {
    return policy::ModelConfig::FromFile(policy.model_dir + "/config.json");
  }
  if (!policy.init.is_object()) {
    throw ConfigError(
        "policy: expected either policy.model_dir or a policy.init object "
        "(a Hugging Face config.json)");
  }
  nlohmann::json init = policy.init;
  // policy::LoadPolicy's rule: a fresh model's vocabulary is the
  // tokenizer's unless policy.init names one.
  if (!init.contains("vocab_size")) {
    init["vocab_size"] = policy::LoadTokenizer(policy.tokenizer)->size();
  }
  return policy::ModelConfig::FromJson(init, "policy.init");
}

std::string MemoryVerdict(const MemoryPlan& plan) {
  const int64_t device = plan.options.cluster.device_bytes;
  if (plan.fits) {
    const RoleMemory* worst = &plan.roles.front();
    for (const RoleMemory& role : plan.roles) {
      if (role.on_device && role.peak_bytes > worst->peak_bytes) {
        worst = &role;
      }
    }
    std::string what =
        fmt::format("fits: the {} peaks at {} of {} ({:.0f}%)", worst->role,
                    GiB(worst->peak_bytes), GiB(device),
                    100.0 * static_cast<double>(worst->peak_bytes) /
                        static_cast<double>(std::max<int64_t>(1, device)));
    if (plan.options.cluster.cpu && plan.roles.size() > 1) {
      what += fmt::format(", all processes of a node {}", GiB(plan.node_bytes));
    }
    return what + "; largest item: " + plan.largest;
  }
  return fmt::format(
      "does not fit: {}; largest item: {}; {}", plan.problem, plan.largest,
      plan.fix.empty() ? "no combination of activation checkpointing, a "
                         "smaller micro-batch, bf16, ZeRO-3, more GPUs, LoRA "
                         "or shorter episodes makes it fit"
                       : "fix: " + plan.fix);
}

nlohmann::json MemoryPlanToJson(const MemoryPlan& plan) {
  const policy::ModelConfig& m = plan.model;
  const ClusterShape& c = plan.options.cluster;
  nlohmann::json roles = nlohmann::json::array();
  for (const RoleMemory& role : plan.roles) roles.push_back(RoleToJson(role));
  nlohmann::json out = {
      {"model",
       {{"model_type", m.model_type},
        {"parameters", plan.parameters},
        {"adapter_parameters", plan.adapter_parameters},
        {"layers", m.num_hidden_layers},
        {"hidden_size", m.hidden_size},
        {"vocab_size", m.vocab_size}}},
      {"run",
       {{"learner_ranks", plan.learner_ranks},
        {"rollout_workers", plan.rollout_workers},
        {"sharding", ShardingName(plan.options.sharding)},
        {"micro_batch_sequences", plan.micro_batch_sequences},
        {"sequence_tokens", plan.sequence_tokens}}},
      {"cluster",
       {{"device", c.cpu ? "cpu" : "gpu"},
        {"nodes", c.nodes},
        {"gpus_per_node", c.gpus_per_node},
        {"device_bytes", c.device_bytes},
        {"device_gib", static_cast<double>(c.device_bytes) / kGiB}}},
      {"roles", roles},
      {"fits", plan.fits},
      {"problem", plan.problem},
      {"largest", plan.largest},
      {"fix", plan.fix},
      {"verdict", MemoryVerdict(plan)}};
  if (c.cpu) out["node_bytes"] = plan.node_bytes;
  return out;
}

namespace {

std::string RoleTable(const RoleMemory& role, int64_t device_bytes) {
  std::ostringstream out;
  out << fmt::format("{} ({} process{}{})\n", role.role, role.processes,
                     role.processes == 1 ? "" : "es",
                     role.note.empty() ? "" : "; " + role.note);
  out << fmt::format("  {:<44} {:<18} {:>15} {:>9}\n", "item", "phase", "bytes",
                     "GiB");
  for (const MemoryItem& item : role.items) {
    out << fmt::format("  {:<44} {:<18} {:>15} {:>9.2f}\n", item.name,
                       PhaseName(item.phases), item.bytes,
                       static_cast<double>(item.bytes) / kGiB);
  }
  out << fmt::format(
      "  {:<44} {:<18} {:>15} {:>9.2f}  {}\n",
      role.peak_phase == kPhaseAll
          ? std::string("peak (resident)")
          : fmt::format("peak (resident + {})", PhaseName(role.peak_phase)),
      "", role.peak_bytes, static_cast<double>(role.peak_bytes) / kGiB,
      role.on_device ? fmt::format("of {}: {}", GiB(device_bytes),
                                   role.fits ? "fits" : "does not fit")
                     : "host memory, not a GPU's");
  return out.str();
}

}  // namespace

std::string FormatMemoryPlan(const MemoryPlan& plan) {
  const policy::ModelConfig& m = plan.model;
  const ClusterShape& c = plan.options.cluster;
  std::ostringstream out;
  out << fmt::format(
      "model: {}, {} parameters ({} layers, hidden {}, vocab {}){}\n",
      m.model_type, plan.parameters, m.num_hidden_layers, m.hidden_size,
      m.vocab_size,
      plan.adapter_parameters > 0 ? fmt::format("; LoRA adapters {} parameters",
                                                plan.adapter_parameters)
                                  : "");
  out << fmt::format(
      "run: {} learner rank{} ({}), {} rollout worker{}; micro-batch {} x {} "
      "tokens\n",
      plan.learner_ranks, plan.learner_ranks == 1 ? "" : "s",
      ShardingName(plan.options.sharding), plan.rollout_workers,
      plan.rollout_workers == 1 ? "" : "s", plan.micro_batch_sequences,
      plan.sequence_tokens);
  out << (c.cpu ? fmt::format("cluster: {} node{} (CPU), {} of RAM each\n",
                              c.nodes, c.nodes == 1 ? "" : "s",
                              GiB(c.device_bytes))
                : fmt::format("cluster: {} node{} x {} GPUs, {} each\n",
                              c.nodes, c.nodes == 1 ? "" : "s", c.gpus_per_node,
                              GiB(c.device_bytes)));
  for (const RoleMemory& role : plan.roles) {
    out << "\n" << RoleTable(role, c.device_bytes);
  }
  if (c.cpu && plan.roles.size() > 1) {
    out << fmt::format("\nall processes of a node: {}\n", GiB(plan.node_bytes));
  }
  out << "\nverdict: " << MemoryVerdict(plan) << "\n";
  return out.str();
}

}  // namespace clinrl::trainer
