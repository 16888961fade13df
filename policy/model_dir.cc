#include "policy/model_dir.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/error.h"

namespace clinrl::policy {
namespace {

std::string Shape(c10::IntArrayRef sizes) {
  return fmt::format("[{}]", fmt::join(sizes.begin(), sizes.end(), ", "));
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

at::ScalarType ParseDtype(const std::string& name, const std::string& field) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  throw BadRequest(fmt::format(
      "{}: '{}' is not supported; expected float32, bfloat16 or float16", field,
      name));
}

void LoadWeights(Transformer& model, const CheckpointReader& checkpoint) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (IsLoraParameter(name)) continue;  // LoadLoraAdapter reads those
    if (!checkpoint.Has(name)) {
      throw NotFound(
          fmt::format("checkpoint has no tensor '{}' (expected shape {})", name,
                      Shape(p.value().sizes())));
    }
    const at::Tensor stored = checkpoint.Get(name);
    if (stored.sizes() != p.value().sizes()) {
      throw BadRequest(fmt::format(
          "checkpoint tensor '{}' has shape {}; the config expects {}", name,
          Shape(stored.sizes()), Shape(p.value().sizes())));
    }
    p.value().copy_(stored);
  }
}

Transformer LoadModel(const std::string& dir, const ModelLoadOptions& options) {
  const std::string config_path = dir + "/config.json";
  if (!Exists(config_path)) {
    throw NotFound(fmt::format("model folder '{}' has no config.json", dir));
  }
  const ModelConfig config = ModelConfig::FromFile(config_path);
  Transformer model(config);
  const CheckpointReader checkpoint(dir);
  LoadWeights(model, checkpoint);
  model->to(torch::Device(options.device),
            ParseDtype(options.dtype, "policy.dtype"));
  model->eval();
  return model;
}

void SaveModel(Transformer& model, const std::string& dir,
               const std::string& dtype, int64_t max_shard_bytes) {
  const auto type = ParseDtype(dtype, "dtype");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) {
    if (IsLoraParameter(p.key())) continue;  // SaveLoraAdapter writes those
    tensors.emplace_back(p.key(), p.value().detach().to(torch::kCPU, type));
  }
  MakeDirectories(dir);
  SaveCheckpoint(dir, tensors, max_shard_bytes);
  ModelConfig config = model->config();
  config.torch_dtype = dtype;
  WriteFileAtomic(dir + "/config.json", config.ToJson().dump(2) + "\n");
}

std::unique_ptr<Tokenizer> LoadModelTokenizer(const std::string& dir) {
  if (Exists(dir + "/tokenizer.json")) return LoadTokenizer(dir);
  return LoadTokenizer("byte");
}

void InitModelDir(const ModelConfig& config_in, const Tokenizer& tokenizer,
                  const std::string& dir, uint64_t seed) {
  ModelConfig config = config_in;
  if (config.vocab_size < tokenizer.size()) {
    throw BadRequest(
        fmt::format("vocab_size: {} is smaller than the tokenizer's {} ids",
                    config.vocab_size, tokenizer.size()));
  }
  if (config.eos_token_ids.empty()) {
    config.eos_token_ids = tokenizer.DefaultStopIds();
  }
  Transformer model(config);
  model->ResetParameters(seed);
  SaveModel(model, dir, "float32");
  tokenizer.Save(dir);
  nlohmann::json generation = {{"eos_token_id", config.eos_token_ids},
                               {"do_sample", true}};
  WriteFileAtomic(dir + "/generation_config.json", generation.dump(2) + "\n");
}

namespace {

PolicyModel LoadBasePolicy(const PolicyConfig& config, uint64_t init_seed) {
  // A device this process cannot use fails here, at start, naming the key.
  const torch::Device device = ParseDevice(config.device, "policy.device");
  PolicyModel out;
  if (!config.model_dir.empty()) {
    ModelLoadOptions load;
    load.dtype = config.dtype;
    load.device = device.str();
    out.model = LoadModel(config.model_dir, load);
    out.tokenizer = LoadModelTokenizer(config.model_dir);
    return out;
  }
  if (!config.init.is_object()) {
    throw ConfigError(
        "policy: expected either policy.model_dir or a policy.init object "
        "(a Hugging Face config.json)");
  }
  out.tokenizer = LoadTokenizer(config.tokenizer);
  // A fresh model's vocabulary is the tokenizer's: ids past it could be
  // sampled but never decoded.
  nlohmann::json init = config.init;
  if (!init.contains("vocab_size")) init["vocab_size"] = out.tokenizer->size();
  const ModelConfig model_config = ModelConfig::FromJson(init, "policy.init");
  if (model_config.vocab_size != out.tokenizer->size()) {
    throw ConfigError(fmt::format(
        "policy.init.vocab_size: got {}, expected the tokenizer's {} ids "
        "(or leave it out)",
        model_config.vocab_size, out.tokenizer->size()));
  }
  out.model = Transformer(TransformerOptions(model_config));
  out.model->ResetParameters(init_seed);
  out.model->to(device);
  return out;
}

}  // namespace

PolicyModel LoadPolicy(const PolicyConfig& config, uint64_t init_seed) {
  const LoraOptions lora = LoraOptions::FromConfig(config.lora, init_seed);
  PolicyModel out = LoadBasePolicy(config, init_seed);
  if (lora.enabled()) out.model->AddLora(lora);
  return out;
}

}  // namespace clinrl::policy
