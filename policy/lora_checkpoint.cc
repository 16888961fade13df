#include "policy/lora_checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <filesystem>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "policy/safetensors.h"

namespace clinrl::policy {
namespace {

// PEFT prefixes the wrapped model's names with the PeftModel's own path.
constexpr const char* kPeftPrefix = "base_model.model.";

}  // namespace

void SaveLoraAdapter(Transformer& model, const std::string& dir,
                     const std::string& base_model) {
  CLINRL_CHECK(model->has_lora(), "SaveLoraAdapter: the model has no LoRA");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) {
    if (!IsLoraParameter(p.key())) continue;
    tensors.emplace_back(kPeftPrefix + p.key(),
                         p.value().detach().to(torch::kCPU, torch::kFloat));
  }
  MakeDirectories(dir);
  SaveSafetensors(dir + "/adapter_model.safetensors", tensors);
  WriteFileAtomic(
      dir + "/adapter_config.json",
      model->options().lora().ToPeftConfig(base_model).dump(2) + "\n");
}

void LoadLoraAdapter(Transformer& model, const std::string& dir) {
  const std::string config_path = dir + "/adapter_config.json";
  const std::string weights_path = dir + "/adapter_model.safetensors";
  for (const std::string& path : {config_path, weights_path}) {
    if (!std::filesystem::exists(path)) {
      throw NotFound(
          fmt::format("LoRA adapter folder '{}' has no {}", dir,
                      std::filesystem::path(path).filename().string()));
    }
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(ReadFile(config_path));
  } catch (const nlohmann::json::parse_error& e) {
    throw BadRequest(
        fmt::format("{}: expected JSON, got text that does not parse ({})",
                    config_path, e.what()));
  }
  LoraOptions options = LoraOptions::FromPeftConfig(doc, config_path);
  if (!model->has_lora()) {
    model->AddLora(options);
  } else {
    const LoraOptions have = model->options().lora();
    if (have.rank != options.rank || have.alpha != options.alpha ||
        have.target_modules != options.target_modules) {
      throw BadRequest(fmt::format(
          "{}: r {} lora_alpha {} target_modules {}; the model's adapters "
          "have r {} alpha {} targets {}",
          config_path, options.rank, options.alpha,
          nlohmann::json(options.target_modules).dump(), have.rank, have.alpha,
          nlohmann::json(have.target_modules).dump()));
    }
  }
  const SafetensorsFile file(weights_path);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    if (!IsLoraParameter(p.key())) continue;
    const std::string stored_name = kPeftPrefix + p.key();
    if (!file.Has(stored_name)) {
      throw NotFound(fmt::format("{} has no tensor '{}' (expected shape [{}])",
                                 weights_path, stored_name,
                                 fmt::join(p.value().sizes(), ", ")));
    }
    const at::Tensor stored = file.Get(stored_name);
    if (stored.sizes() != p.value().sizes()) {
      throw BadRequest(fmt::format(
          "{}: tensor '{}' has shape [{}], expected [{}]", weights_path,
          stored_name, fmt::join(stored.sizes(), ", "),
          fmt::join(p.value().sizes(), ", ")));
    }
    p.value().copy_(stored);
  }
}

Transformer MergeLora(Transformer& model) {
  CLINRL_CHECK(model->has_lora(), "MergeLora: the model has no LoRA");
  TransformerOptions options(model->config());
  Transformer merged(options);
  const auto& w = model->model->embed_tokens->weight;
  merged->to(w.device(), w.scalar_type());
  merged->set_precision(model->precision());
  torch::NoGradGuard no_grad;
  auto dst = merged->named_parameters();
  const auto src = model->named_parameters();
  for (const auto& p : src) {
    if (!IsLoraParameter(p.key())) dst[p.key()].copy_(p.value());
  }
  // Each target projection's lora_A names its base weight and its lora_B.
  const std::string a_suffix = ".lora_A.weight";
  const double scale = model->options().lora().scale();
  for (const auto& p : src) {
    const std::string& name = p.key();
    if (name.size() <= a_suffix.size() ||
        name.compare(name.size() - a_suffix.size(), a_suffix.size(),
                     a_suffix) != 0) {
      continue;
    }
    const std::string base = name.substr(0, name.size() - a_suffix.size());
    dst[base + ".weight"].copy_(MergedWeight(
        src[base + ".weight"], p.value(), src[base + ".lora_B.weight"], scale));
  }
  merged->train(model->is_training());
  return merged;
}

}  // namespace clinrl::policy
