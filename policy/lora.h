// Low-rank adapters (LoRA, Hu et al. 2021) as PEFT lays them out: a target
// projection W x + b gains (alpha / r) B A dropout(x), with A [r, in]
// (Kaiming-uniform at start) and B [out, r] (zero at start, so a fresh
// adapter leaves the model unchanged). A and B are Linear modules registered
// inside the projection as `lora_A` and `lora_B`, so parameter names are
// PEFT's without the adapter name: `model.layers.0.self_attn.q_proj.lora_A.
// weight`. Everything else in the model is frozen.
#pragma once

#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl {
struct LoraConfig;
}

namespace clinrl::policy {

struct LoraOptions {
  int64_t rank = 0;  // 0 = no adapters
  double alpha = 16.0;
  double dropout = 0.0;
  std::vector<std::string> target_modules;
  uint64_t seed = 0;  // initialises every A

  bool enabled() const { return rank > 0; }
  double scale() const { return alpha / static_cast<double>(rank); }
  bool Targets(const std::string& projection) const;

  // From the run config's policy.lora; throws ConfigError naming
  // policy.lora.<field>, the value and what was expected.
  static LoraOptions FromConfig(const LoraConfig& config, uint64_t seed);
  // PEFT's adapter_config.json, and back (BadRequest names the field of
  // `where` for what clinrl cannot apply: another peft_type, bias training,
  // rsLoRA, DoRA, per-module ranks).
  nlohmann::json ToPeftConfig(const std::string& base_model) const;
  static LoraOptions FromPeftConfig(const nlohmann::json& doc,
                                    const std::string& where);
};

// The projections an adapter may target, in PEFT's (and HF's) names.
const std::vector<std::string>& LoraTargetNames();

// One projection's adapter; empty (false) when the projection has none.
struct LoraAdapter {
  torch::nn::Linear a{nullptr};  // lora_A: [r, in]
  torch::nn::Linear b{nullptr};  // lora_B: [out, r]
  double scale = 0.0;
  double dropout = 0.0;
  explicit operator bool() const { return !a.is_empty(); }
};

// Registers lora_A and lora_B inside `base`, on its device and dtype,
// A drawn from `generator_seed`, B zero.
LoraAdapter AttachLora(torch::nn::Linear& base, const LoraOptions& options,
                       uint64_t generator_seed);

// base(x) plus the adapter's update; dropout on the adapter's input only
// while `base` is in training mode. Equal to base(x) without an adapter.
torch::Tensor LoraProject(torch::nn::Linear& base, const LoraAdapter& lora,
                          const torch::Tensor& x);

// The adapter's update alone, (alpha / r) B A x, without dropout: inference.
torch::Tensor LoraDelta(const LoraAdapter& lora, const torch::Tensor& x);

// W + (alpha / r) B A, in W's dtype, without autograd: the merged weight
// that inference and `clinrl model export` use.
torch::Tensor MergedWeight(const torch::nn::Linear& base,
                           const LoraAdapter& lora);
// The same from the tensors: weight [out, in], A [r, in], B [out, r].
torch::Tensor MergedWeight(const torch::Tensor& weight, const torch::Tensor& a,
                           const torch::Tensor& b, double scale);

// Whether a parameter name is an adapter's (".lora_A." / ".lora_B.").
bool IsLoraParameter(const std::string& name);

}  // namespace clinrl::policy
