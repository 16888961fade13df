#include "policy/model_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

#include "core/config.h"
#include "core/error.h"
#include "core/wire.h"

namespace clinrl::policy {

int64_t ModelConfig::LayerParameterCount() const {
  const int64_t d = HeadDim();
  const int64_t q = num_attention_heads * d;
  const int64_t kv = num_key_value_heads * d;
  int64_t attn = hidden_size * q + 2 * hidden_size * kv + q * hidden_size;
  if (attention_bias) attn += q + 2 * kv;
  const int64_t mlp = 3 * hidden_size * intermediate_size;
  return num_hidden_layers * (attn + mlp);
}

int64_t ModelConfig::ParameterCount() const {
  const int64_t d = HeadDim();
  int64_t norms = num_hidden_layers * 2 * hidden_size + hidden_size;
  if (qk_norm) norms += num_hidden_layers * 2 * d;
  const int64_t embed = vocab_size * hidden_size;
  return LayerParameterCount() + norms + embed +
         (tie_word_embeddings ? 0 : embed);
}

namespace {

// Reads the rotary settings into `c`, from either spelling transformers has
// used: 4.x writes `rope_theta` at the top level and the scaling in
// `rope_scaling` (null for none); 5.x writes one `rope_parameters` object
// with `rope_type` and `rope_theta` inside (flat, or nested under layer types
// for models that mix attention kinds). As transformers 5 does, a
// `rope_scaling` object wins over `rope_parameters`, and a `rope_theta`
// inside the object wins over the top-level one.
void ReadRope(const wire::Fields& f, const std::string& where, ModelConfig& c) {
  c.rope_theta = f.Double("rope_theta", 10000.0);
  const char* key = f.Has("rope_scaling")      ? "rope_scaling"
                    : f.Has("rope_parameters") ? "rope_parameters"
                                               : nullptr;
  if (key == nullptr) return;
  std::string path = where + "." + key;
  const nlohmann::json* rope = &f.Object(key);
  // Nested by layer type: only full attention exists here (layer_types is
  // checked separately), so its entry is the one that applies.
  for (const char* layer_type : {"full_attention", "sliding_attention"}) {
    if (!rope->contains(layer_type)) continue;
    if (std::string(layer_type) != "full_attention" || rope->size() != 1) {
      std::vector<std::string> keys;
      for (const auto& item : rope->items()) keys.push_back(item.key());
      throw BadRequest(fmt::format(
          "{}: per-layer-type rotary settings for {} are not supported; "
          "expected one flat object or only a 'full_attention' entry",
          path, fmt::join(keys, ", ")));
    }
    path += ".full_attention";
    rope = &rope->at("full_attention");
    if (!rope->is_object()) {
      throw BadRequest(fmt::format("{}: expected an object, got {}", path,
                                   rope->type_name()));
    }
    break;
  }
  wire::Fields rs(*rope, path);
  c.rope_theta = rs.Double("rope_theta", c.rope_theta);
  const double partial = rs.Double("partial_rotary_factor",
                                   f.Double("partial_rotary_factor", 1.0));
  if (partial != 1.0) {
    throw BadRequest(fmt::format(
        "{}.partial_rotary_factor: {} is not supported; clinrl rotates the "
        "whole head (expected 1.0)",
        path, partial));
  }
  const std::string type = rs.Has("rope_type") ? rs.String("rope_type")
                                               : rs.String("type", "default");
  if (type == "llama3") {
    // Required by transformers' llama3 rotary too; the original context
    // defaults as there, to max_position_embeddings.
    c.rope_scaling_factor = rs.Double("factor");
    c.rope_low_freq_factor = rs.Double("low_freq_factor");
    c.rope_high_freq_factor = rs.Double("high_freq_factor");
    c.rope_original_max_position =
        rs.Int("original_max_position_embeddings", c.max_position_embeddings);
    if (!(c.rope_scaling_factor > 0) ||
        !(c.rope_high_freq_factor > c.rope_low_freq_factor) ||
        c.rope_original_max_position <= 0) {
      throw BadRequest(fmt::format(
          "{}: llama3 scaling needs factor > 0, high_freq_factor > "
          "low_freq_factor and original_max_position_embeddings > 0; got {}",
          path, rope->dump()));
    }
  } else if (type != "default") {
    throw BadRequest(fmt::format(
        "{}.rope_type: '{}' is not supported; expected default or llama3", path,
        type));
  }
}

// transformers' per-family defaults where config.json leaves a key out.
int64_t DefaultMaxPositions(const std::string& model_type) {
  if (model_type == "llama") return 2048;
  if (model_type == "mistral") return 131072;
  return 32768;
}

}  // namespace

ModelConfig ModelConfig::FromJson(const nlohmann::json& doc,
                                  const std::string& where) {
  if (!doc.is_object()) {
    throw BadRequest(fmt::format("{}: expected a JSON object, got {}", where,
                                 doc.dump().substr(0, 80)));
  }
  wire::Fields f(doc, where);
  ModelConfig c;
  c.model_type = f.String("model_type", "llama");
  if (c.model_type != "llama" && c.model_type != "qwen2" &&
      c.model_type != "qwen3" && c.model_type != "mistral") {
    throw BadRequest(fmt::format(
        "{}.model_type: '{}' is not supported; expected one of llama, "
        "mistral, qwen2, qwen3",
        where, c.model_type));
  }
  c.hidden_size = f.Int("hidden_size");
  c.intermediate_size = f.Int("intermediate_size");
  c.num_hidden_layers = f.Int("num_hidden_layers");
  c.num_attention_heads = f.Int("num_attention_heads");
  c.num_key_value_heads = f.Int("num_key_value_heads", c.num_attention_heads);
  // Qwen3Config defaults head_dim to 128 rather than hidden / heads.
  c.head_dim = f.Int("head_dim", c.model_type == "qwen3" ? 128 : 0);
  c.vocab_size = f.Int("vocab_size");
  c.max_position_embeddings =
      f.Int("max_position_embeddings", DefaultMaxPositions(c.model_type));
  c.rms_norm_eps = f.Double("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = f.Bool("tie_word_embeddings", false);
  // As in transformers: Qwen2 always has q/k/v biases and Mistral never has
  // any, whatever the key says; Llama and Qwen3 read it.
  c.attention_bias = c.model_type == "qwen2" ? true
                     : c.model_type == "mistral"
                         ? false
                         : f.Bool("attention_bias", false);
  if (c.attention_bias && c.model_type != "qwen2") {
    // transformers' Llama and Qwen3 then put a bias on o_proj too, which
    // clinrl's attention does not have: the tensor would be ignored and the
    // logits silently wrong.
    throw BadRequest(fmt::format(
        "{}.attention_bias: true is not supported for {} (transformers adds "
        "q/k/v and o_proj biases; clinrl has no o_proj bias); expected false",
        where, c.model_type));
  }
  c.qk_norm = c.model_type == "qwen3";
  // transformers 5 writes `dtype`, 4.x `torch_dtype`.
  c.torch_dtype =
      f.Has("dtype") ? f.String("dtype") : f.String("torch_dtype", "float32");
  if (c.torch_dtype != "float32" && c.torch_dtype != "bfloat16" &&
      c.torch_dtype != "float16") {
    throw BadRequest(fmt::format(
        "{}.{}: '{}' is not supported; expected float32, bfloat16 or float16",
        where, f.Has("dtype") ? "dtype" : "torch_dtype", c.torch_dtype));
  }
  const std::string act = f.String("hidden_act", "silu");
  if (act != "silu") {
    throw BadRequest(fmt::format(
        "{}.hidden_act: '{}' is not supported; expected silu", where, act));
  }
  if (f.Bool("mlp_bias", false)) {
    throw BadRequest(fmt::format(
        "{}.mlp_bias: true is not supported; expected false", where));
  }
  ReadRope(f, where, c);
  // Sliding-window attention is not implemented: refuse any layer that would
  // use it. transformers 5 lists the kind of every layer of Qwen2/Qwen3 in
  // `layer_types`; without it (4.x, or a hand-written config) those slide
  // from layer max_window_layers (default 28) on when use_sliding_window is
  // set, and Mistral slides in every layer. An absent sliding_window means
  // transformers' default of 4096; only null turns it off.
  const bool window_off =
      doc.contains("sliding_window") && doc["sliding_window"].is_null();
  const int64_t window = window_off ? 0 : f.Int("sliding_window", 4096);
  if (c.model_type == "mistral") {
    if (!window_off && window < c.max_position_embeddings) {
      throw BadRequest(fmt::format(
          "{}.sliding_window: {} is not supported (sliding-window attention "
          "below max_position_embeddings {}); expected null",
          where, window, c.max_position_embeddings));
    }
  } else if (f.Has("layer_types")) {
    const auto& types = f.Array("layer_types");
    if (static_cast<int64_t>(types.size()) != c.num_hidden_layers) {
      throw BadRequest(
          fmt::format("{}.layer_types: {} entries for {} num_hidden_layers",
                      where, types.size(), c.num_hidden_layers));
    }
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] != "full_attention") {
        throw BadRequest(
            fmt::format("{}.layer_types[{}]: {} is not supported; expected "
                        "\"full_attention\" (no sliding-window attention)",
                        where, i, types[i].dump()));
      }
    }
  } else if (c.model_type != "llama" && f.Bool("use_sliding_window", false) &&
             !window_off &&
             f.Int("max_window_layers", 28) < c.num_hidden_layers) {
    throw BadRequest(fmt::format(
        "{}.use_sliding_window: true is not supported (layers from "
        "max_window_layers {} on would use sliding-window attention); "
        "expected false",
        where, f.Int("max_window_layers", 28)));
  }
  if (f.Has("eos_token_id") && !doc["eos_token_id"].is_null()) {
    const auto& e = doc["eos_token_id"];
    if (e.is_array()) {
      c.eos_token_ids = f.IntArray("eos_token_id");
    } else {
      c.eos_token_ids = {f.Int("eos_token_id")};
    }
  }
  if (f.Has("bos_token_id") && !doc["bos_token_id"].is_null()) {
    c.bos_token_id = f.Int("bos_token_id");
  }

  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) {
      throw BadRequest(fmt::format("{}.{}: {} is not allowed; expected > 0",
                                   where, name, v));
    }
  };
  positive("hidden_size", c.hidden_size);
  positive("intermediate_size", c.intermediate_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("num_key_value_heads", c.num_key_value_heads);
  positive("vocab_size", c.vocab_size);
  positive("max_position_embeddings", c.max_position_embeddings);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    throw BadRequest(fmt::format(
        "{}.num_key_value_heads: {} does not divide num_attention_heads {}",
        where, c.num_key_value_heads, c.num_attention_heads));
  }
  if (c.head_dim == 0 && c.hidden_size % c.num_attention_heads != 0) {
    throw BadRequest(
        fmt::format("{}.num_attention_heads: {} does not divide hidden_size {}",
                    where, c.num_attention_heads, c.hidden_size));
  }
  if (c.HeadDim() % 2 != 0) {
    throw BadRequest(fmt::format(
        "{}.head_dim: {} is odd; the rotary embedding needs an even head size",
        where, c.HeadDim()));
  }
  if (!(c.rms_norm_eps > 0) || !(c.rope_theta > 0)) {
    throw BadRequest(
        fmt::format("{}: rms_norm_eps ({}) and rope_theta ({}) must be > 0",
                    where, c.rms_norm_eps, c.rope_theta));
  }
  return c;
}

ModelConfig ModelConfig::FromFile(const std::string& path) {
  return FromJson(config::LoadJsonFile(path), path);
}

nlohmann::json ModelConfig::ToJson() const {
  static const std::map<std::string, std::string> kArchitecture = {
      {"llama", "LlamaForCausalLM"},
      {"mistral", "MistralForCausalLM"},
      {"qwen2", "Qwen2ForCausalLM"},
      {"qwen3", "Qwen3ForCausalLM"}};
  nlohmann::json j = {
      {"architectures", {kArchitecture.at(model_type)}},
      {"model_type", model_type},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", HeadDim()},
      {"vocab_size", vocab_size},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"tie_word_embeddings", tie_word_embeddings},
      {"hidden_act", "silu"},
      // transformers 5 reads `dtype`, 4.x `torch_dtype`.
      {"dtype", torch_dtype},
      {"torch_dtype", torch_dtype},
  };
  if (model_type != "qwen2") j["attention_bias"] = attention_bias;
  // clinrl attends over every earlier token: say so, or transformers (and
  // FromJson) take Mistral's default window of 4096.
  j["sliding_window"] = nullptr;
  if (rope_scaling_factor > 0) {
    j["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", rope_scaling_factor},
        {"low_freq_factor", rope_low_freq_factor},
        {"high_freq_factor", rope_high_freq_factor},
        {"original_max_position_embeddings", rope_original_max_position}};
  }
  if (!eos_token_ids.empty()) {
    if (eos_token_ids.size() == 1) {
      j["eos_token_id"] = eos_token_ids[0];
    } else {
      j["eos_token_id"] = eos_token_ids;
    }
  }
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  return j;
}

}  // namespace clinrl::policy
