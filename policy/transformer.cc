#include "policy/transformer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <initializer_list>

#include "core/error.h"
#include "policy/paged_attention.h"
#include "policy/paged_kv_cache.h"

namespace clinrl::policy {
namespace {

torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

std::string Shape(c10::IntArrayRef sizes) {
  return fmt::format("[{}]", fmt::join(sizes.begin(), sizes.end(), ", "));
}

torch::Tensor ApplyRotary(const torch::Tensor& x, const RotaryTables& r) {
  return x * r.cos + RotateHalf(x) * r.sin;
}

// A layer's projections that may carry adapters: (name, Linear, adapter
// slot). Each targeted one gets an adapter drawn from seed + its index.
struct LoraTarget {
  const char* name;
  torch::nn::Linear* base;
  LoraAdapter* adapter;
};
void AttachTargets(std::initializer_list<LoraTarget> targets,
                   const LoraOptions& options, uint64_t seed) {
  uint64_t i = 0;
  for (const LoraTarget& t : targets) {
    if (options.Targets(t.name)) {
      *t.adapter = AttachLora(*t.base, options, seed + i);
    }
    ++i;
  }
}

}  // namespace

RmsNormImpl::RmsNormImpl(int64_t size, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({size}));
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  // As transformers: statistics in float32, result cast back before the
  // weight multiplies it.
  // Casts only when needed: a no-op .to() still costs a dispatch, and
  // decoding calls this 13 times a token.
  const bool is_float = x.scalar_type() == torch::kFloat;
  const torch::Tensor xf = is_float ? x : x.to(torch::kFloat);
  const torch::Tensor scale =
      torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  const torch::Tensor normed = xf * scale;
  return weight * (is_float ? normed : normed.to(x.scalar_type()));
}

AttentionImpl::AttentionImpl(const ModelConfig& c)
    : num_heads_(c.num_attention_heads),
      num_kv_heads_(c.num_key_value_heads),
      head_dim_(c.HeadDim()) {
  const int64_t q = num_heads_ * head_dim_;
  const int64_t kv = num_kv_heads_ * head_dim_;
  using torch::nn::LinearOptions;
  q_proj = register_module(
      "q_proj", torch::nn::Linear(
                    LinearOptions(c.hidden_size, q).bias(c.attention_bias)));
  k_proj = register_module(
      "k_proj", torch::nn::Linear(
                    LinearOptions(c.hidden_size, kv).bias(c.attention_bias)));
  v_proj = register_module(
      "v_proj", torch::nn::Linear(
                    LinearOptions(c.hidden_size, kv).bias(c.attention_bias)));
  o_proj = register_module(
      "o_proj", torch::nn::Linear(LinearOptions(q, c.hidden_size).bias(false)));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RmsNorm(head_dim_, c.rms_norm_eps));
    k_norm = register_module("k_norm", RmsNorm(head_dim_, c.rms_norm_eps));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x,
                                     const RotaryTables& rotary,
                                     const AttentionLayout& layout,
                                     KvCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t D = head_dim_, Hkv = num_kv_heads_;
  torch::Tensor q = LoraProject(q_proj, q_lora, x).view({B, T, num_heads_, D});
  torch::Tensor k = LoraProject(k_proj, k_lora, x).view({B, T, Hkv, D});
  torch::Tensor v = LoraProject(v_proj, v_lora, x).view({B, T, Hkv, D});
  if (q_norm) {
    q = q_norm(q);
    k = k_norm(k);
  }
  q = ApplyRotary(q.transpose(1, 2), rotary);  // [B, H, T, D]
  k = ApplyRotary(k.transpose(1, 2), rotary);  // [B, Hkv, T, D]
  v = v.transpose(1, 2);
  torch::Tensor keys = k, values = v;
  if (cache != nullptr) std::tie(keys, values) = cache->Append(layer, k, v);
  // Fused calls (flash or memory-efficient kernels where the device has
  // them); enable_gqa lets the G query heads of a group share their K/V head
  // without repeating K/V in memory.
  const bool gqa = num_heads_ != Hkv;
  torch::Tensor out;
  if (!layout.sequence_starts.empty()) {
    // Variable length: each sequence of the packed row on its own, causal.
    std::vector<torch::Tensor> parts;
    const auto& starts = layout.sequence_starts;
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t begin = starts[i];
      const int64_t end = i + 1 < starts.size() ? starts[i + 1] : T;
      parts.push_back(at::scaled_dot_product_attention(
          q.narrow(2, begin, end - begin), keys.narrow(2, begin, end - begin),
          values.narrow(2, begin, end - begin), /*attn_mask=*/{},
          /*dropout_p=*/0.0, /*is_causal=*/true, /*scale=*/std::nullopt,
          /*enable_gqa=*/gqa));
    }
    out = torch::cat(parts, 2);
  } else {
    out = at::scaled_dot_product_attention(
        q, keys, values, layout.allowed, /*dropout_p=*/0.0,
        /*is_causal=*/false, /*scale=*/std::nullopt, /*enable_gqa=*/gqa);
  }
  out = out.transpose(1, 2).reshape({B, T, num_heads_ * D});
  return LoraProject(o_proj, o_lora, out);
}

torch::Tensor AttentionImpl::ForwardPaged(
    const torch::Tensor& x, const RotaryTables& rotary,
    const torch::Tensor& slots, PagedKvCache& cache, PagedAttention& attention,
    int64_t layer, c10::ScalarType dtype) {
  const int64_t N = x.size(0);
  const int64_t D = head_dim_, H = num_heads_, Hkv = num_kv_heads_;
  const torch::Tensor qkv =
      qkv_.Apply({q_proj, k_proj, v_proj}, {q_lora, k_lora, v_lora}, x, dtype);
  const torch::Tensor v =
      qkv.narrow(1, (H + Hkv) * D, Hkv * D).view({N, Hkv, D});
  torch::Tensor q, k;
  if (q_norm) {
    q = ApplyRotary(q_norm(qkv.narrow(1, 0, H * D).view({N, H, D})), rotary);
    k = ApplyRotary(k_norm(qkv.narrow(1, H * D, Hkv * D).view({N, Hkv, D})),
                    rotary);
  } else {
    // Queries and keys side by side in the product: one rotation for both.
    const torch::Tensor qk = ApplyRotary(
        qkv.narrow(1, 0, (H + Hkv) * D).view({N, H + Hkv, D}), rotary);
    q = qk.narrow(1, 0, H);
    k = qk.narrow(1, H, Hkv);
  }
  cache.Write(layer, slots, k, v);
  const torch::Tensor out =
      attention.Attend(q.scalar_type() == cache.keys(layer).scalar_type()
                           ? q
                           : q.to(cache.keys(layer).scalar_type()),
                       cache.keys(layer), cache.values(layer));
  return o_.Apply({o_proj}, {o_lora}, out.reshape({N, H * D}), dtype);
}

void AttentionImpl::AttachLora(const LoraOptions& options, uint64_t seed) {
  AttachTargets({{"q_proj", &q_proj, &q_lora},
                 {"k_proj", &k_proj, &k_lora},
                 {"v_proj", &v_proj, &v_lora},
                 {"o_proj", &o_proj, &o_lora}},
                options, seed);
}

MlpImpl::MlpImpl(const ModelConfig& c) {
  using torch::nn::LinearOptions;
  gate_proj = register_module(
      "gate_proj",
      torch::nn::Linear(
          LinearOptions(c.hidden_size, c.intermediate_size).bias(false)));
  up_proj = register_module(
      "up_proj",
      torch::nn::Linear(
          LinearOptions(c.hidden_size, c.intermediate_size).bias(false)));
  down_proj = register_module(
      "down_proj",
      torch::nn::Linear(
          LinearOptions(c.intermediate_size, c.hidden_size).bias(false)));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return LoraProject(down_proj, down_lora,
                     torch::silu(LoraProject(gate_proj, gate_lora, x))
                         .mul_(LoraProject(up_proj, up_lora, x)));
}

torch::Tensor MlpImpl::ForwardFused(const torch::Tensor& x,
                                    c10::ScalarType dtype) {
  const torch::Tensor gate_up =
      gate_up_.Apply({gate_proj, up_proj}, {gate_lora, up_lora}, x, dtype);
  const int64_t I = gate_proj->weight.size(0);
  return down_.Apply(
      {down_proj}, {down_lora},
      torch::silu(gate_up.narrow(-1, 0, I)).mul_(gate_up.narrow(-1, I, I)),
      dtype);
}

void MlpImpl::AttachLora(const LoraOptions& options, uint64_t seed) {
  // Seeds after the attention's four projections.
  AttachTargets({{"gate_proj", &gate_proj, &gate_lora},
                 {"up_proj", &up_proj, &up_lora},
                 {"down_proj", &down_proj, &down_lora}},
                options, seed + 4);
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", Mlp(c));
  input_layernorm = register_module("input_layernorm",
                                    RmsNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm = register_module(
      "post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x,
                                        const RotaryTables& rotary,
                                        const AttentionLayout& layout,
                                        KvCache* cache, int64_t layer) {
  torch::Tensor h =
      x + self_attn(input_layernorm(x), rotary, layout, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

torch::Tensor DecoderLayerImpl::ForwardPaged(
    const torch::Tensor& x, const RotaryTables& rotary,
    const torch::Tensor& slots, PagedKvCache& cache, PagedAttention& attention,
    int64_t layer, c10::ScalarType dtype) {
  torch::Tensor h =
      x + self_attn->ForwardPaged(input_layernorm(x), rotary, slots, cache,
                                  attention, layer, dtype);
  return h + mlp->ForwardFused(post_attention_layernorm(h), dtype);
}

DecoderStackImpl::DecoderStackImpl(const ModelConfig& c) {
  embed_tokens = register_module(
      "embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers->push_back(DecoderLayer(c));
  }
  norm = register_module("norm", RmsNorm(c.hidden_size, c.rms_norm_eps));
}

TransformerImpl::TransformerImpl(const TransformerOptions& options)
    : options_(options) {
  const ModelConfig& c = options_.config();
  model = register_module("model", DecoderStack(c));
  if (!c.tie_word_embeddings) {
    lm_head = register_module(
        "lm_head",
        torch::nn::Linear(
            torch::nn::LinearOptions(c.hidden_size, c.vocab_size).bias(false)));
  }
  // inv_freq as transformers computes it (float32, base ** (2i / D)), with
  // the Llama 3.1 frequency scaling when the config asks for it.
  const int64_t D = c.HeadDim();
  inv_freq_ = 1.0 / torch::pow(torch::tensor(c.rope_theta, torch::kDouble),
                               torch::arange(0, D, 2, torch::kDouble) / D);
  inv_freq_ = inv_freq_.to(torch::kFloat);
  if (c.rope_scaling_factor > 0) {
    const double low_wavelen =
        c.rope_original_max_position / c.rope_low_freq_factor;
    const double high_wavelen =
        c.rope_original_max_position / c.rope_high_freq_factor;
    const torch::Tensor wavelen = 2 * M_PI / inv_freq_;
    torch::Tensor scaled = torch::where(
        wavelen > low_wavelen, inv_freq_ / c.rope_scaling_factor, inv_freq_);
    const torch::Tensor smooth =
        (c.rope_original_max_position / wavelen - c.rope_low_freq_factor) /
        (c.rope_high_freq_factor - c.rope_low_freq_factor);
    const torch::Tensor smoothed =
        (1 - smooth) * scaled / c.rope_scaling_factor + smooth * scaled;
    const torch::Tensor medium =
        (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv_freq_ = torch::where(medium, smoothed, scaled);
  }
  if (options_.lora().enabled()) {
    const LoraOptions lora = options_.lora();
    options_.lora(LoraOptions{});
    AddLora(lora);
  }
}

void TransformerImpl::AddLora(const LoraOptions& lora) {
  CLINRL_CHECK(lora.enabled(), "AddLora needs a rank >= 1, got {}", lora.rank);
  CLINRL_CHECK(!has_lora(), "the model has LoRA adapters already");
  // A seed per (layer, projection): the layer's block of 16, offset by the
  // projection's index inside the layer.
  uint64_t layer_seed = lora.seed * 0x9E3779B97F4A7C15ULL;
  for (const auto& module : *model->layers) {
    DecoderLayerImpl* layer = module->as<DecoderLayer>();
    layer->self_attn->AttachLora(lora, layer_seed);
    layer->mlp->AttachLora(lora, layer_seed);
    layer_seed += 16;
  }
  for (auto& p : named_parameters()) {
    p.value().set_requires_grad(IsLoraParameter(p.key()));
  }
  options_.lora(lora);
}

RotaryTables TransformerImpl::Rotary(const torch::Tensor& positions) {
  if (inv_freq_.device() != positions.device()) {
    inv_freq_ = inv_freq_.to(positions.device());
  }
  const torch::Tensor freqs =
      positions.to(torch::kFloat).unsqueeze(-1) * inv_freq_;  // [B, T, D/2]
  const torch::Tensor emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);
  const auto dtype = model->embed_tokens->weight.scalar_type();
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor TransformerImpl::PositionsFromMask(
    const torch::Tensor& key_mask) {
  const torch::Tensor m = key_mask.to(torch::kLong);
  return (m.cumsum(1) - m).clamp_min(0);
}

namespace {

// One decoder layer under activation checkpointing. Forward runs the layer
// without autograd and saves only its input; backward runs it again with
// autograd from that input and returns the input's gradient. The layer's
// parameters are not inputs of this function, so autograd would not reach
// them: their gradients are accumulated into .grad here, as autograd's own
// accumulation would.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  // A variable-length layout has no mask; autograd functions take defined
  // tensors only, so an empty one stands in for it.
  static torch::Tensor MaskArgument(const AttentionLayout& layout) {
    return layout.allowed.defined() ? layout.allowed
                                    : torch::empty({0}, torch::kBool);
  }
  static AttentionLayout Layout(const torch::Tensor& allowed,
                                std::vector<int64_t> sequence_starts) {
    AttentionLayout layout;
    if (sequence_starts.empty()) layout.allowed = allowed;
    layout.sequence_starts = std::move(sequence_starts);
    return layout;
  }

  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin,
                               const torch::Tensor& allowed,
                               const std::vector<int64_t>& sequence_starts,
                               DecoderLayerImpl* layer, int64_t index,
                               int64_t precision, LayerWeightHooks* hooks) {
    ctx->save_for_backward({x, cos, sin, allowed});
    ctx->saved_data["sequence_starts"] = sequence_starts;
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["index"] = index;
    // Backward runs outside the forward's autocast region; the recompute
    // must cast as the forward did to give the same gradients.
    ctx->saved_data["precision"] = precision;
    ctx->saved_data["hooks"] = reinterpret_cast<int64_t>(hooks);
    torch::NoGradGuard no_grad;
    if (hooks) hooks->Gather(index);
    torch::Tensor out = layer->forward(
        x, {cos, sin}, Layout(allowed, sequence_starts), nullptr, index);
    if (hooks) hooks->Release(index);
    return out;
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grad_output) {
    const auto saved = ctx->get_saved_variables();
    auto* layer =
        reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    const int64_t index = ctx->saved_data["index"].toInt();
    auto* hooks =
        reinterpret_cast<LayerWeightHooks*>(ctx->saved_data["hooks"].toInt());
    if (hooks) hooks->Gather(index);
    const torch::Tensor x = saved[0].detach().requires_grad_(true);
    std::vector<torch::Tensor> inputs = {x};
    std::vector<torch::Tensor> params;
    for (const torch::Tensor& p : layer->parameters()) {
      if (p.requires_grad()) params.push_back(p);
    }
    inputs.insert(inputs.end(), params.begin(), params.end());
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      const AutocastGuard autocast(
          x.device(),
          static_cast<Precision>(ctx->saved_data["precision"].toInt()));
      const AttentionLayout layout =
          Layout(saved[3], ctx->saved_data["sequence_starts"].toIntVector());
      out = layer->forward(x, {saved[1], saved[2]}, layout, nullptr, index);
    }
    const auto grads = torch::autograd::grad({out}, inputs, {grad_output[0]},
                                             /*retain_graph=*/false,
                                             /*create_graph=*/false,
                                             /*allow_unused=*/true);
    for (size_t i = 0; i < params.size(); ++i) {
      const torch::Tensor& g = grads[i + 1];
      if (!g.defined()) continue;
      torch::Tensor& accumulated = params[i].mutable_grad();
      accumulated = accumulated.defined() ? accumulated + g : g.clone();
    }
    if (hooks) hooks->GradientsReady(index);
    return {grads[0],        torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Device TransformerImpl::device() const {
  return model->embed_tokens->weight.device();
}

torch::Tensor TransformerImpl::PositionsFromSegments(
    const torch::Tensor& segments) {
  const int64_t T = segments.size(1);
  const torch::Tensor slot =
      torch::arange(T, torch::dtype(torch::kLong).device(segments.device()))
          .expand_as(segments);
  // A sequence starts where the segment id changes; its positions count
  // from that slot (the running maximum of the start slots).
  torch::Tensor starts = torch::ones_like(segments, torch::kBool);
  if (T > 1) {
    starts.narrow(1, 1, T - 1)
        .copy_(segments.narrow(1, 1, T - 1).ne(segments.narrow(1, 0, T - 1)));
  }
  const torch::Tensor start_slot = std::get<0>(
      torch::where(starts, slot, torch::zeros_like(slot)).cummax(1));
  return slot - start_slot;
}

torch::Tensor TransformerImpl::Hidden(const torch::Tensor& input_ids,
                                      const torch::Tensor& positions_in,
                                      const torch::Tensor& key_mask_in,
                                      KvCache* cache,
                                      const torch::Tensor& segments_in) {
  if (input_ids.dim() != 2) {
    throw BadRequest(fmt::format("input_ids: expected [batch, time], got {}",
                                 Shape(input_ids.sizes())));
  }
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t start = cache != nullptr ? cache->length() : 0;
  const int64_t S = start + T;
  const auto device = input_ids.device();
  torch::Tensor key_mask = key_mask_in;
  if (!key_mask.defined()) {
    key_mask = torch::ones({B, S}, torch::dtype(torch::kBool).device(device));
  }
  if (key_mask.dim() != 2 || key_mask.size(0) != B || key_mask.size(1) != S) {
    throw BadRequest(fmt::format(
        "key_mask: expected [{}, {}] (batch, cached + new slots), got {}", B, S,
        Shape(key_mask.sizes())));
  }
  key_mask = key_mask.to(torch::kBool);
  torch::Tensor segments;
  if (segments_in.defined()) {
    if (cache != nullptr || segments_in.sizes() != input_ids.sizes()) {
      throw BadRequest(fmt::format(
          "segments: expected {} (the ids' shape) and no KV cache, got {}{}",
          Shape(input_ids.sizes()), Shape(segments_in.sizes()),
          cache != nullptr ? " with a cache" : ""));
    }
    segments = segments_in.to(torch::kLong);
    key_mask = key_mask & segments.ne(0);
  }
  torch::Tensor positions = positions_in;
  if (!positions.defined()) {
    positions = segments.defined()
                    ? PositionsFromSegments(segments)
                    : PositionsFromMask(key_mask).narrow(1, start, T);
  }
  if (positions.sizes() != input_ids.sizes()) {
    throw BadRequest(fmt::format("positions: expected {}, got {}",
                                 Shape(input_ids.sizes()),
                                 Shape(positions.sizes())));
  }
  const int64_t max_pos = config().max_position_embeddings;
  if (T > 0 && positions.max().item<int64_t>() >= max_pos) {
    throw BadRequest(
        fmt::format("positions: {} reaches max_position_embeddings {}",
                    positions.max().item<int64_t>(), max_pos));
  }
  AttentionLayout layout;
  if (segments.defined() && B == 1 && T > 0 &&
      segments.min().item<int64_t>() > 0 && key_mask.all().item<bool>()) {
    // One packed row without padding: the variable-length path.
    const torch::Tensor cpu = segments[0].cpu();
    const auto seg = cpu.accessor<int64_t, 1>();
    for (int64_t t = 0; t < T; ++t) {
      if (t == 0 || seg[t] != seg[t - 1]) layout.sequence_starts.push_back(t);
    }
  } else {
    // Which keys each query may attend to, [B, 1, T, S]: causal and not
    // padding. A padding query also sees its own slot, so that no row is
    // empty: an all-false row makes some attention kernels return NaN, which
    // a backward pass would spread even though padding outputs are never
    // used.
    const torch::Tensor query_slot =
        torch::arange(start, S, torch::dtype(torch::kLong).device(device))
            .view({1, T, 1});
    const torch::Tensor key_slot =
        torch::arange(0, S, torch::dtype(torch::kLong).device(device))
            .view({1, 1, S});
    torch::Tensor visible = key_slot.le(query_slot) & key_mask.view({B, 1, S});
    if (segments.defined()) {
      // Packed rows: block-diagonal causal attention, a block per sequence.
      visible = visible & segments.view({B, T, 1}).eq(segments.view({B, 1, S}));
    }
    layout.allowed = (visible | key_slot.eq(query_slot)).view({B, 1, T, S});
  }

  const AutocastGuard autocast(device, precision_);
  const RotaryTables rotary = Rotary(positions);
  torch::Tensor h = model->embed_tokens(input_ids);
  CLINRL_CHECK(hooks_ == nullptr || cache == nullptr,
               "a model with sharded layer weights runs no KV-cache forward");
  // Sharded weights are gone after each layer's forward, so backward must
  // recompute the layer: checkpointing is implied.
  const bool checkpoint = (checkpointing_ || hooks_ != nullptr) &&
                          cache == nullptr && torch::GradMode::is_enabled();
  int64_t layer = 0;
  for (const auto& module : *model->layers) {
    DecoderLayerImpl* decoder = module->as<DecoderLayer>();
    if (checkpoint) {
      h = CheckpointedLayer::apply(h, rotary.cos, rotary.sin,
                                   CheckpointedLayer::MaskArgument(layout),
                                   layout.sequence_starts, decoder, layer,
                                   static_cast<int64_t>(precision_), hooks_);
    } else {
      if (hooks_) hooks_->Gather(layer);
      h = decoder->forward(h, rotary, layout, cache, layer);
      if (hooks_) hooks_->Release(layer);
    }
    ++layer;
  }
  if (cache != nullptr) cache->Advance(T);
  return model->norm(h);
}

torch::Tensor TransformerImpl::Logits(const torch::Tensor& hidden) {
  const torch::Tensor& head =
      lm_head ? lm_head->weight : model->embed_tokens->weight;
  if (!torch::GradMode::is_enabled() && precision_ == Precision::kFp32 &&
      hidden.device().is_cpu() && hidden.scalar_type() == torch::kFloat &&
      head.scalar_type() == torch::kFloat) {
    // Float32 inference on the CPU: the head prepared for the packed or
    // few-row product (policy/fused_linear.h).
    std::vector<int64_t> sizes = hidden.sizes().vec();
    sizes.back() = head.size(0);
    return head_.Apply(head, hidden.reshape({-1, hidden.size(-1)}),
                       torch::kFloat)
        .view(sizes);
  }
  const AutocastGuard autocast(hidden.device(), precision_);
  if (lm_head) return lm_head(hidden);
  return torch::matmul(hidden, model->embed_tokens->weight.t());
}

torch::Tensor TransformerImpl::HiddenPaged(const torch::Tensor& input_ids,
                                           const torch::Tensor& positions,
                                           const torch::Tensor& slots,
                                           PagedKvCache& cache,
                                           PagedAttention& attention) {
  CLINRL_CHECK(!torch::GradMode::is_enabled(),
               "HiddenPaged is for inference; call it under NoGradGuard");
  CLINRL_CHECK(hooks_ == nullptr,
               "a model with sharded layer weights runs no paged forward");
  const int64_t N = input_ids.size(0);
  const AutocastGuard autocast(input_ids.device(), precision_);
  const auto dtype = precision_ == Precision::kBf16
                         ? torch::kBFloat16
                         : model->embed_tokens->weight.scalar_type();
  const RotaryTables tables = Rotary(positions.view({1, N}));
  const int64_t D = tables.cos.size(-1);
  // Rotary in the parameters' dtype, as Hidden applies it, so that bf16
  // sampling rounds where the learner's forward rounds.
  const RotaryTables rotary{tables.cos.view({N, 1, D}),
                            tables.sin.view({N, 1, D})};
  torch::Tensor h = model->embed_tokens(input_ids);
  int64_t layer = 0;
  for (const auto& module : *model->layers) {
    h = module->as<DecoderLayer>()->ForwardPaged(h, rotary, slots, cache,
                                                 attention, layer, dtype);
    ++layer;
  }
  return model->norm(h);
}

PagedKvCache TransformerImpl::MakePagedCache(int64_t block_size,
                                             int64_t initial_blocks) const {
  const ModelConfig& c = config();
  const auto& w = model->embed_tokens->weight;
  const auto dtype =
      precision_ == Precision::kBf16 ? torch::kBFloat16 : w.scalar_type();
  return PagedKvCache(c.num_hidden_layers, c.num_key_value_heads, c.HeadDim(),
                      block_size, initial_blocks,
                      torch::TensorOptions().dtype(dtype).device(w.device()));
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& input_ids,
                                       const torch::Tensor& positions,
                                       const torch::Tensor& key_mask,
                                       KvCache* cache,
                                       const torch::Tensor& segments) {
  return Logits(Hidden(input_ids, positions, key_mask, cache, segments));
}

KvCache TransformerImpl::MakeCache(int64_t batch, int64_t capacity) const {
  const ModelConfig& c = config();
  const auto& w = model->embed_tokens->weight;
  // Under bf16 autocast the keys and values are computed in bfloat16.
  const auto dtype =
      precision_ == Precision::kBf16 ? torch::kBFloat16 : w.scalar_type();
  return KvCache(c.num_hidden_layers, batch, c.num_key_value_heads, capacity,
                 c.HeadDim(),
                 torch::TensorOptions().dtype(dtype).device(w.device()));
}

void TransformerImpl::ResetParameters(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    if (IsLoraParameter(name)) continue;
    torch::Tensor& t = p.value();
    const bool is_norm = name.find("norm") != std::string::npos;
    const bool is_bias =
        name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) {
      t.fill_(1.0);
    } else if (is_bias) {
      t.zero_();
    } else {
      torch::Tensor cpu = torch::empty(t.sizes(), torch::kFloat);
      cpu.normal_(0.0, 0.02, gen);
      t.copy_(cpu);
    }
  }
}

torch::Tensor GatherLogProbs(const torch::Tensor& logits,
                             const torch::Tensor& targets) {
  const torch::Tensor lf = logits.to(torch::kFloat);
  const torch::Tensor picked = lf.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  return picked - torch::logsumexp(lf, -1);
}

torch::Tensor SequenceLogProbs(Transformer& model,
                               const torch::Tensor& input_ids,
                               const torch::Tensor& attention_mask) {
  torch::Tensor mask = attention_mask;
  if (!mask.defined()) mask = torch::ones_like(input_ids, torch::kBool);
  mask = mask.to(torch::kBool);
  const int64_t T = input_ids.size(1);
  const torch::Tensor logits = model->forward(input_ids, {}, mask);
  const torch::Tensor lp =
      GatherLogProbs(logits.narrow(1, 0, T - 1), input_ids.narrow(1, 1, T - 1));
  return lp.masked_fill(mask.narrow(1, 1, T - 1).logical_not(), 0.0);
}

int64_t SetComputeThreads(int64_t threads) {
  if (threads < 0) {
    throw BadRequest(fmt::format(
        "threads: {} is not allowed; expected 0 (all cores) or more", threads));
  }
  if (threads == 0) {
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    threads = cores > 0 ? cores : 1;
  }
  at::set_num_threads(static_cast<int>(threads));
  return at::get_num_threads();
}

}  // namespace clinrl::policy
