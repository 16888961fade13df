#include "policy/lora.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/clinrl_config.h"
#include "core/error.h"

namespace clinrl::policy {

const std::vector<std::string>& LoraTargetNames() {
  static const std::vector<std::string> names = {
      "q_proj",    "k_proj",  "v_proj",   "o_proj",
      "gate_proj", "up_proj", "down_proj"};
  return names;
}

bool LoraOptions::Targets(const std::string& projection) const {
  return std::find(target_modules.begin(), target_modules.end(), projection) !=
         target_modules.end();
}

LoraOptions LoraOptions::FromConfig(const LoraConfig& config, uint64_t seed) {
  LoraOptions out;
  out.rank = config.rank;
  out.alpha = config.alpha;
  out.dropout = config.dropout;
  out.target_modules = config.target_modules;
  out.seed = seed;
  if (!out.enabled()) return out;
  if (out.dropout >= 1.0) {
    throw ConfigError(fmt::format(
        "policy.lora.dropout: got {}, expected a probability below 1",
        out.dropout));
  }
  if (out.alpha <= 0.0) {
    throw ConfigError(fmt::format(
        "policy.lora.alpha: got {}, expected a positive scaling numerator",
        out.alpha));
  }
  if (out.target_modules.empty()) {
    throw ConfigError(fmt::format(
        "policy.lora.target_modules: got an empty list, expected some of: {}",
        fmt::join(LoraTargetNames(), ", ")));
  }
  for (size_t i = 0; i < out.target_modules.size(); ++i) {
    const std::string& name = out.target_modules[i];
    const auto& known = LoraTargetNames();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      throw ConfigError(fmt::format(
          "policy.lora.target_modules[{}]: got '{}', expected one of: {}", i,
          name, fmt::join(known, ", ")));
    }
  }
  return out;
}

nlohmann::json LoraOptions::ToPeftConfig(const std::string& base_model) const {
  // What peft.LoraConfig.save_pretrained writes for a plain adapter; peft
  // fills any key it knows and this leaves out with its default.
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"base_model_name_or_path", base_model},
          {"r", rank},
          {"lora_alpha", alpha},
          {"lora_dropout", dropout},
          {"target_modules", target_modules},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"use_rslora", false},
          {"use_dora", false},
          {"init_lora_weights", true},
          {"inference_mode", true},
          {"modules_to_save", nullptr},
          {"layers_to_transform", nullptr},
          {"rank_pattern", nlohmann::json::object()},
          {"alpha_pattern", nlohmann::json::object()}};
}

namespace {

void RequireDefault(const nlohmann::json& doc, const std::string& where,
                    const std::string& key, const nlohmann::json& expected,
                    const char* why) {
  if (!doc.contains(key) || doc[key].is_null() || doc[key] == expected) return;
  throw BadRequest(fmt::format("{}.{}: got {}, expected {} ({})", where, key,
                               doc[key].dump(), expected.dump(), why));
}

}  // namespace

LoraOptions LoraOptions::FromPeftConfig(const nlohmann::json& doc,
                                        const std::string& where) {
  if (!doc.is_object()) {
    throw BadRequest(fmt::format("{}: expected a JSON object, got {}", where,
                                 doc.type_name()));
  }
  RequireDefault(doc, where, "peft_type", "LORA", "only LoRA adapters load");
  RequireDefault(doc, where, "bias", "none", "clinrl trains no biases");
  RequireDefault(doc, where, "use_rslora", false, "scale is alpha / r");
  RequireDefault(doc, where, "use_dora", false, "DoRA is not implemented");
  RequireDefault(doc, where, "fan_in_fan_out", false, "weights are [out, in]");
  RequireDefault(doc, where, "rank_pattern", nlohmann::json::object(),
                 "one rank for every module");
  RequireDefault(doc, where, "alpha_pattern", nlohmann::json::object(),
                 "one alpha for every module");
  RequireDefault(doc, where, "layers_to_transform", nullptr,
                 "every layer has adapters");
  RequireDefault(doc, where, "modules_to_save", nullptr,
                 "adapters only: no fully trained modules ride along");
  LoraOptions out;
  try {
    out.rank = doc.at("r").get<int64_t>();
    out.alpha = doc.value("lora_alpha", 8.0);
    out.dropout = doc.value("lora_dropout", 0.0);
    const nlohmann::json& targets = doc.at("target_modules");
    if (targets.is_string()) {
      out.target_modules = {targets.get<std::string>()};
    } else {
      out.target_modules = targets.get<std::vector<std::string>>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw BadRequest(fmt::format(
        "{}: expected r (integer) and target_modules (a list of names): {}",
        where, e.what()));
  }
  if (out.rank <= 0) {
    throw BadRequest(
        fmt::format("{}.r: got {}, expected a rank >= 1", where, out.rank));
  }
  for (const std::string& name : out.target_modules) {
    const auto& known = LoraTargetNames();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      throw BadRequest(
          fmt::format("{}.target_modules: got '{}', expected names among: {}",
                      where, name, fmt::join(known, ", ")));
    }
  }
  return out;
}

LoraAdapter AttachLora(torch::nn::Linear& base, const LoraOptions& options,
                       uint64_t generator_seed) {
  using torch::nn::LinearOptions;
  const torch::Tensor& w = base->weight;
  const int64_t out = w.size(0), in = w.size(1);
  LoraAdapter lora;
  lora.a = base->register_module(
      "lora_A", torch::nn::Linear(LinearOptions(in, options.rank).bias(false)));
  lora.b = base->register_module(
      "lora_B",
      torch::nn::Linear(LinearOptions(options.rank, out).bias(false)));
  lora.scale = options.scale();
  lora.dropout = options.dropout;
  torch::NoGradGuard no_grad;
  // PEFT's default: A ~ kaiming_uniform(a = sqrt(5)), i.e. U(-1/sqrt(in),
  // 1/sqrt(in)); B = 0.
  auto gen = at::detail::createCPUGenerator(generator_seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  torch::Tensor a = torch::empty({options.rank, in}, torch::kFloat);
  a.uniform_(-bound, bound, gen);
  lora.a->to(w.device(), w.scalar_type());
  lora.b->to(w.device(), w.scalar_type());
  lora.a->weight.copy_(a);
  lora.b->weight.zero_();
  lora.a->train(base->is_training());
  lora.b->train(base->is_training());
  return lora;
}

torch::Tensor LoraDelta(const LoraAdapter& lora, const torch::Tensor& x) {
  return torch::linear(torch::linear(x, lora.a->weight), lora.b->weight)
      .mul_(lora.scale);
}

torch::Tensor LoraProject(torch::nn::Linear& base, const LoraAdapter& lora,
                          const torch::Tensor& x) {
  torch::Tensor out = base(x);
  if (!lora) return out;
  const torch::Tensor in = lora.dropout > 0.0 && base->is_training()
                               ? torch::dropout(x, lora.dropout, true)
                               : x;
  return out +
         torch::linear(torch::linear(in, lora.a->weight), lora.b->weight) *
             lora.scale;
}

torch::Tensor MergedWeight(const torch::Tensor& weight, const torch::Tensor& a,
                           const torch::Tensor& b, double scale) {
  torch::NoGradGuard no_grad;
  // The product in float32 whatever the stored dtype, as PEFT's merge does
  // for bfloat16 weights on the CPU.
  const torch::Tensor delta =
      torch::mm(b.to(torch::kFloat), a.to(torch::kFloat)).mul_(scale);
  return (weight.to(torch::kFloat) + delta).to(weight.scalar_type());
}

torch::Tensor MergedWeight(const torch::nn::Linear& base,
                           const LoraAdapter& lora) {
  if (!lora) return base->weight;
  return MergedWeight(base->weight, lora.a->weight, lora.b->weight, lora.scale);
}

bool IsLoraParameter(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos ||
         name.find(".lora_B.") != std::string::npos;
}

}  // namespace clinrl::policy
