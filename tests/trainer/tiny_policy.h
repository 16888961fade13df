// The tiny transformer of the trainer tests: the one-process PolicyTrainer
// tests and the data-parallel ones (which compare against the one-process
// result) train the same model.
#pragma once

#include "policy/transformer.h"

namespace clinrl::trainer::testing {

inline policy::Transformer TinyPolicy() {
  policy::ModelConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 50;
  c.max_position_embeddings = 256;
  policy::Transformer model{policy::TransformerOptions(c)};
  model->ResetParameters(9);
  return model;
}

}  // namespace clinrl::trainer::testing
