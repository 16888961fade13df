// Decoder-only transformer of the Llama / Qwen2 / Qwen3 family: RMSNorm,
// rotary embeddings, grouped-query attention, SwiGLU MLP, optional q/k/v bias
// and q/k norms, optional tied embeddings. Submodules carry the Hugging Face
// names, so named_parameters() lists `model.layers.0.self_attn.q_proj.weight`,
// ..., `lm_head.weight` and checkpoints load in transformers and vLLM.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/fused_linear.h"
#include "policy/kv_cache.h"
#include "policy/lora.h"
#include "policy/model_config.h"
#include "policy/precision.h"

namespace clinrl::policy {

// The generation engine's cache and attention plan (paged_kv_cache.h,
// paged_attention.h), declared only: most users of the model never page.
class PagedKvCache;
class PagedAttention;

struct TransformerOptions {
  /* implicit */ TransformerOptions(ModelConfig config)
      : config_(std::move(config)) {}
  TORCH_ARG(ModelConfig, config);
  // Low-rank adapters on the target projections (policy/lora.h); rank 0 =
  // none. A model with adapters trains only them.
  TORCH_ARG(LoraOptions, lora);
};

class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t size, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RmsNorm);

// Rotary tables for one forward: cos and sin, [B, 1, T, D].
struct RotaryTables {
  torch::Tensor cos;
  torch::Tensor sin;
};

// Which keys each query may attend to, in one of two forms.
struct AttentionLayout {
  // [B, 1, T, S] bool: padding, caches and packed rows of several batch rows.
  torch::Tensor allowed;
  // Variable-length form (a "varlen" path): one packed row (B = 1, no cache,
  // no padding) of whole sequences starting at these slots, each attending
  // causally to itself only. Attention then costs what the sequences cost
  // one by one, not the square of the row.
  std::vector<int64_t> sequence_starts;
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const ModelConfig& config);
  // x [B, T, hidden]; `layout` says which keys each query may attend to;
  // with a cache, keys and values of this call are appended at its length.
  torch::Tensor forward(const torch::Tensor& x, const RotaryTables& rotary,
                        const AttentionLayout& layout, KvCache* cache,
                        int64_t layer);
  // Inference over a paged cache: x [N, hidden] (one engine step's packed
  // tokens), rotary tables [N, 1, D]; keys and values go to `slots` [N].
  // q, k and v come from one fused product in `dtype`.
  torch::Tensor ForwardPaged(const torch::Tensor& x, const RotaryTables& rotary,
                             const torch::Tensor& slots, PagedKvCache& cache,
                             PagedAttention& attention, int64_t layer,
                             c10::ScalarType dtype);

  // Adapters on the projections `options` targets; `seed` draws their A.
  void AttachLora(const LoraOptions& options, uint64_t seed);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr},
      o_proj{nullptr};
  RmsNorm q_norm{nullptr}, k_norm{nullptr};    // Qwen3 only
  LoraAdapter q_lora, k_lora, v_lora, o_lora;  // empty without LoRA

 private:
  int64_t num_heads_, num_kv_heads_, head_dim_;
  FusedLinear qkv_, o_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);
  // Inference: gate and up from one fused product in `dtype`.
  torch::Tensor ForwardFused(const torch::Tensor& x, c10::ScalarType dtype);
  void AttachLora(const LoraOptions& options, uint64_t seed);
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  LoraAdapter gate_lora, up_lora, down_lora;  // empty without LoRA

 private:
  FusedLinear gate_up_, down_;
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const RotaryTables& rotary,
                        const AttentionLayout& layout, KvCache* cache,
                        int64_t layer);
  torch::Tensor ForwardPaged(const torch::Tensor& x, const RotaryTables& rotary,
                             const torch::Tensor& slots, PagedKvCache& cache,
                             PagedAttention& attention, int64_t layer,
                             c10::ScalarType dtype);
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// Parameter sharding (ZeRO-3, trainer/zero3.h) keeps a decoder layer's
// weights only while that layer computes. A model with hooks asks for layer
// i's weights just before the layer runs (its forward, and again for the
// recompute in backward) and hands them back right after; with autograd on it
// always recomputes each layer in backward (activation checkpointing), since
// the forward's weights are gone by then.
class LayerWeightHooks {
 public:
  virtual ~LayerWeightHooks() = default;
  virtual void Gather(int64_t layer) = 0;
  // After the layer's forward: its weights may go.
  virtual void Release(int64_t layer) = 0;
  // After the layer's backward: its gradients are in its parameters'
  // .grad(); the hooks take them (and the weights) away.
  virtual void GradientsReady(int64_t layer) = 0;
};

// The `model.` prefix of the Hugging Face names.
class DecoderStackImpl : public torch::nn::Module {
 public:
  explicit DecoderStackImpl(const ModelConfig& config);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};
};
TORCH_MODULE(DecoderStack);

class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const TransformerOptions& options);

  // Logits [B, T, vocab] for token ids [B, T].
  //   positions [B, T] int64: rotary positions; default: the count of real
  //     tokens before each slot, from key_mask.
  //   key_mask [B, S] bool/int: which slots hold real tokens (S = cached
  //     slots + T); default: all. Padding may sit left or right.
  //   cache: keys/values of earlier slots; this call appends its own.
  //   segments [B, T] int64 (packed rows, no cache): which sequence of the
  //     row each slot holds, 0 = padding; a token attends only to earlier
  //     tokens of its own sequence, and default positions restart at 0 at
  //     each sequence's first slot. One row without padding takes the
  //     variable-length path (AttentionLayout::sequence_starts).
  torch::Tensor forward(const torch::Tensor& input_ids,
                        const torch::Tensor& positions = {},
                        const torch::Tensor& key_mask = {},
                        KvCache* cache = nullptr,
                        const torch::Tensor& segments = {});
  // Final-norm hidden states [B, T, hidden]; same arguments as forward.
  torch::Tensor Hidden(const torch::Tensor& input_ids,
                       const torch::Tensor& positions = {},
                       const torch::Tensor& key_mask = {},
                       KvCache* cache = nullptr,
                       const torch::Tensor& segments = {});
  // Logits for hidden states [..., hidden].
  torch::Tensor Logits(const torch::Tensor& hidden);

  // Inference over a paged cache (the generation engine's step): token ids
  // and positions [N] of several sequences packed in one row, their keys and
  // values written to `slots` [N] of `cache`, attention as `attention` was
  // planned. Returns final-norm hidden states [N, hidden].
  torch::Tensor HiddenPaged(const torch::Tensor& input_ids,
                            const torch::Tensor& positions,
                            const torch::Tensor& slots, PagedKvCache& cache,
                            PagedAttention& attention);
  // A paged cache for this model, in its compute dtype and device.
  PagedKvCache MakePagedCache(int64_t block_size, int64_t initial_blocks) const;

  // Activation checkpointing: a forward with autograd on and no cache keeps
  // only each decoder layer's input and runs the layer again in backward,
  // trading one more forward for the layers' activations. Same gradients.
  void set_activation_checkpointing(bool on) { checkpointing_ = on; }
  bool activation_checkpointing() const { return checkpointing_; }

  // Sharded decoder-layer weights (LayerWeightHooks); null = the layers own
  // their weights. Not owned. A model with hooks runs no KV-cache or paged
  // forward: it is a learner's, not a sampler's.
  void set_layer_weight_hooks(LayerWeightHooks* hooks) { hooks_ = hooks; }
  LayerWeightHooks* layer_weight_hooks() const { return hooks_; }

  // Compute precision of every forward (policy/precision.h): bf16 autocasts
  // matrix products over the float32 parameters; KV caches are then bf16.
  void set_precision(Precision precision) { precision_ = precision; }
  Precision precision() const { return precision_; }
  torch::Device device() const;

  // Positions implied by packed segments [B, T]: each sequence counts from
  // 0 at its first slot.
  static torch::Tensor PositionsFromSegments(const torch::Tensor& segments);

  // A cache sized for this model.
  KvCache MakeCache(int64_t batch, int64_t capacity) const;

  // Positions implied by a key mask [B, S]: real tokens count from 0, padding
  // slots get the position of the next real token (any value works there).
  static torch::Tensor PositionsFromMask(const torch::Tensor& key_mask);

  // Random init as transformers does: normal(0, 0.02) weights, zero biases,
  // unit norms. LoRA adapters keep their own start (A random, B zero).
  void ResetParameters(uint64_t seed);

  // Adds LoRA adapters (options.rank >= 1) and freezes every other
  // parameter: only the adapters then require gradients. options() carries
  // them afterwards, so a model built from options() has them too.
  void AddLora(const LoraOptions& lora);
  bool has_lora() const { return options_.lora().enabled(); }

  const ModelConfig& config() const { return options_.config(); }
  TransformerOptions options() const { return options_; }

  DecoderStack model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  RotaryTables Rotary(const torch::Tensor& positions);
  TransformerOptions options_;
  torch::Tensor inv_freq_;  // [D/2] float32, not a parameter (as in HF)
  bool checkpointing_ = false;
  LayerWeightHooks* hooks_ = nullptr;
  Precision precision_ = Precision::kFp32;
  FusedLinear head_;  // the output head at float32 inference
};
TORCH_MODULE(Transformer);

// log p(targets) under logits: logits [..., V], targets [...] int64 ->
// float32 [...]. Computed as logit - logsumexp without a [.., V] log-softmax.
torch::Tensor GatherLogProbs(const torch::Tensor& logits,
                             const torch::Tensor& targets);

// Per-token log-probs of ids[:, 1:] given their prefixes, for the learner:
// input_ids [B, T], attention_mask [B, T] (1 = real token, any padding side).
// Returns float32 [B, T - 1]; entries whose target is padding are 0.
torch::Tensor SequenceLogProbs(Transformer& model,
                               const torch::Tensor& input_ids,
                               const torch::Tensor& attention_mask = {});

// Sets LibTorch's intra-op thread count; 0 = all online cores. Returns the
// count in effect.
int64_t SetComputeThreads(int64_t threads);

}  // namespace clinrl::policy
