// The shape of a Llama/Qwen2/Qwen3-family decoder, read from and written to a
// Hugging Face style config.json so checkpoints move between clinrl,
// transformers and vLLM unchanged.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::policy {

struct ModelConfig {
  std::string model_type = "qwen2";  // llama | qwen2 | qwen3
  int64_t hidden_size = 256;
  int64_t intermediate_size = 768;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 2;
  int64_t head_dim = 0;  // 0 = hidden_size / num_attention_heads
  int64_t vocab_size = 512;
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = true;
  // Qwen2 always has q/k/v biases; Llama and Qwen3 read `attention_bias`.
  bool attention_bias = true;
  // Qwen3 normalises queries and keys per head before the rotary embedding.
  bool qk_norm = false;
  // Llama 3.1 style frequency scaling of the rotary embedding (rope_type
  // "llama3"); factor 0 = none.
  double rope_scaling_factor = 0.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  int64_t rope_original_max_position = 8192;
  std::string torch_dtype = "float32";
  std::vector<int64_t> eos_token_ids;
  int64_t bos_token_id = -1;

  int64_t HeadDim() const {
    return head_dim > 0 ? head_dim : hidden_size / num_attention_heads;
  }
  // Parameters of the whole model, embeddings (and lm_head) included.
  int64_t ParameterCount() const;
  // Parameters that cost a multiply-add per token in every layer (no
  // embedding table, no lm_head).
  int64_t LayerParameterCount() const;

  // Reads a config.json object as transformers 4.x or 5.x writes it; `where`
  // names it in errors. Unknown keys are ignored (HF configs carry many);
  // known values clinrl cannot compute as transformers does (another
  // rope_type, sliding-window layers, ...) throw BadRequest naming them.
  static ModelConfig FromJson(const nlohmann::json& doc,
                              const std::string& where = "config.json");
  static ModelConfig FromFile(const std::string& path);
  nlohmann::json ToJson() const;
};

}  // namespace clinrl::policy
