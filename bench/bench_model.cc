#include "bench/bench_model.h"

namespace clinrl::bench {

policy::ModelConfig BenchModelConfig(bool quick) {
  policy::ModelConfig c;
  c.model_type = "qwen2";
  c.hidden_size = quick ? 128 : 512;
  c.intermediate_size = quick ? 384 : 1536;
  c.num_hidden_layers = quick ? 2 : 6;
  c.num_attention_heads = quick ? 4 : 8;
  c.num_key_value_heads = 2;
  c.vocab_size = quick ? 512 : 8192;
  c.max_position_embeddings = 2048;
  c.tie_word_embeddings = true;
  c.attention_bias = true;
  return c;
}

double TokenFlops(const policy::ModelConfig& c, double keys, bool logits) {
  double f = 2.0 * c.LayerParameterCount();
  f += 4.0 * c.num_hidden_layers * c.num_attention_heads * c.HeadDim() * keys;
  if (logits) f += 2.0 * c.vocab_size * c.hidden_size;
  return f;
}

double SequenceForwardFlops(const policy::ModelConfig& c, double length) {
  // Position t attends to t + 1 keys: length (length + 1) / 2 in all.
  const double causal_keys = length * (length + 1) / 2;
  return length * TokenFlops(c, 0, true) + TokenFlops(c, causal_keys, false) -
         TokenFlops(c, 0, false);
}

}  // namespace clinrl::bench
