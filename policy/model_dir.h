// A model folder as Hugging Face lays it out: config.json, model.safetensors
// (or shards with model.safetensors.index.json), tokenizer.json and
// tokenizer_config.json. What clinrl saves loads in transformers and vLLM, and
// the reverse.
#pragma once

#include <memory>
#include <string>

#include "core/clinrl_config.h"
#include "policy/safetensors.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"

namespace clinrl::policy {

struct ModelLoadOptions {
  std::string dtype = "float32";  // float32 | bfloat16 | float16
  std::string device = "cpu";
};

// Copies every parameter of `model` from `checkpoint`, converting dtypes.
// Throws NotFound naming a missing tensor and BadRequest naming a tensor
// whose shape differs from the model's.
void LoadWeights(Transformer& model, const CheckpointReader& checkpoint);

Transformer LoadModel(const std::string& dir,
                      const ModelLoadOptions& options = {});

// Writes config.json and the weights (sharded above max_shard_bytes > 0).
// `dtype` is the stored type: float32, bfloat16 or float16.
void SaveModel(Transformer& model, const std::string& dir,
               const std::string& dtype = "float32",
               int64_t max_shard_bytes = 0);

// The folder's tokenizer.json, or the byte-level tokenizer when it has none.
std::unique_ptr<Tokenizer> LoadModelTokenizer(const std::string& dir);

// A randomly initialised model folder (config.json, model.safetensors and
// `tokenizer` saved next to them). vocab_size must hold every token id.
void InitModelDir(const ModelConfig& config, const Tokenizer& tokenizer,
                  const std::string& dir, uint64_t seed);

// The policy of a run config with its tokenizer: policy.model_dir loaded, or
// a fresh model of the policy.init architecture over policy.tokenizer (its
// vocab_size defaults to the tokenizer's, and may not differ), initialised
// from `init_seed`; with policy.lora.rank >= 1, LoRA adapters (A drawn
// from `init_seed`) and every other parameter frozen. Throws ConfigError
// naming the policy field at fault.
struct PolicyModel {
  Transformer model{nullptr};
  std::unique_ptr<Tokenizer> tokenizer;
};
PolicyModel LoadPolicy(const PolicyConfig& config, uint64_t init_seed);

at::ScalarType ParseDtype(const std::string& name, const std::string& field);

}  // namespace clinrl::policy
