#include "policy/model_config.h"

#include <fmt/format.h>

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
  c.num_key_value_heads =
      f.Has("num_key_value_heads") && !doc["num_key_value_heads"].is_null()
          ? f.Int("num_key_value_heads")
          : c.num_attention_heads;
  c.head_dim =
      f.Has("head_dim") && !doc["head_dim"].is_null() ? f.Int("head_dim") : 0;
  c.vocab_size = f.Int("vocab_size");
  c.max_position_embeddings = f.Int("max_position_embeddings", 4096);
  c.rms_norm_eps = f.Double("rms_norm_eps", 1e-6);
  c.rope_theta = f.Double("rope_theta", 10000.0);
  c.tie_word_embeddings = f.Bool("tie_word_embeddings", false);
  c.attention_bias =
      c.model_type == "qwen2" ? true : f.Bool("attention_bias", false);
  c.qk_norm = c.model_type == "qwen3";
  c.torch_dtype = f.String("torch_dtype", "float32");
  if (f.Has("rope_scaling") && !doc["rope_scaling"].is_null()) {
    wire::Fields rs(f.Object("rope_scaling"), where + ".rope_scaling");
    const std::string type =
        rs.Has("rope_type") ? rs.String("rope_type") : rs.String("type");
    if (type == "llama3") {
      c.rope_scaling_factor = rs.Double("factor");
      c.rope_low_freq_factor = rs.Double("low_freq_factor", 1.0);
      c.rope_high_freq_factor = rs.Double("high_freq_factor", 4.0);
      c.rope_original_max_position =
          rs.Int("original_max_position_embeddings", 8192);
    } else if (type != "default") {
      throw BadRequest(fmt::format(
          "{}.rope_scaling.rope_type: '{}' is not supported; expected "
          "default or llama3",
          where, type));
    }
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
      {"torch_dtype", torch_dtype},
  };
  if (model_type != "qwen2") j["attention_bias"] = attention_bias;
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
