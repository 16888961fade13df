// `clinrl model init --config tiny.json --out DIR`: a randomly initialised
// Hugging Face style model folder; `clinrl model info --model DIR`;
// `clinrl model export --model DIR [--adapter DIR] --out DIR`: a model
// folder with a LoRA adapter merged into its weights.
#include <filesystem>
#include <iostream>

#include "cli/command_registry.h"
#include "core/config.h"
#include "policy/lora_checkpoint.h"
#include "policy/model_config.h"
#include "policy/model_dir.h"

namespace clinrl::cli {
namespace {

struct ModelExportArgs {
  std::string model;
  std::string adapter;
  std::string out;
  std::string dtype = "float32";
};

void AddExportCommand(CLI::App& model) {
  auto* exporter = model.add_subcommand(
      "export",
      "write a Hugging Face model folder, a LoRA adapter merged into it");
  auto args = std::make_shared<ModelExportArgs>();
  exporter->add_option("--model", args->model, "base model folder")->required();
  exporter->add_option("--adapter", args->adapter,
                       "PEFT adapter folder (a checkpoint's adapter/)");
  exporter->add_option("--out", args->out, "folder to write")->required();
  exporter->add_option("--dtype", args->dtype,
                       "stored dtype: float32, bfloat16 or float16");
  exporter->callback([args] {
    const int rc = RunCommand([&] {
      policy::ParseDtype(args->dtype, "--dtype");
      policy::Transformer base = policy::LoadModel(args->model);
      policy::Transformer out = base;
      if (!args->adapter.empty()) {
        policy::LoadLoraAdapter(base, args->adapter);
        out = policy::MergeLora(base);
      }
      policy::SaveModel(out, args->out, args->dtype);
      policy::LoadModelTokenizer(args->model)->Save(args->out);
      const std::string generation = args->model + "/generation_config.json";
      if (std::filesystem::exists(generation)) {
        std::filesystem::copy_file(
            generation, args->out + "/generation_config.json",
            std::filesystem::copy_options::overwrite_existing);
      }
      std::cout << nlohmann::json{{"out", args->out},
                                  {"merged_adapter", !args->adapter.empty()},
                                  {"dtype", args->dtype}}
                       .dump()
                << "\n";
    });
    if (rc != 0) std::exit(rc);
  });
}

struct ModelInitArgs {
  std::string config;
  std::string out;
  std::string tokenizer = "byte";
  int64_t seed = 0;
};

void AddModelCommands(CLI::App& app) {
  auto* model = app.add_subcommand("model", "create and inspect model folders");
  model->require_subcommand(1);

  auto* init = model->add_subcommand(
      "init", "write config.json, random model.safetensors and a tokenizer");
  auto args = std::make_shared<ModelInitArgs>();
  init->add_option("--config", args->config,
                   "Hugging Face style config.json of the model")
      ->required();
  init->add_option("--out", args->out, "folder to create")->required();
  init->add_option("--tokenizer", args->tokenizer,
                   "\"byte\" or a folder with tokenizer.json");
  init->add_option("--seed", args->seed, "initialisation seed");
  init->callback([args] {
    const int rc = RunCommand([&] {
      const auto config = policy::ModelConfig::FromFile(args->config);
      const auto tokenizer = policy::LoadTokenizer(args->tokenizer);
      policy::InitModelDir(config, *tokenizer, args->out,
                           static_cast<uint64_t>(args->seed));
      std::cout << nlohmann::json{{"out", args->out},
                                  {"parameters", config.ParameterCount()},
                                  {"tokenizer_size", tokenizer->size()}}
                       .dump()
                << "\n";
    });
    if (rc != 0) std::exit(rc);
  });

  AddExportCommand(*model);

  auto* info = model->add_subcommand("info", "print a model folder's shape");
  auto dir = std::make_shared<std::string>();
  info->add_option("--model", *dir, "model folder")->required();
  info->callback([dir] {
    const int rc = RunCommand([&] {
      const auto config = policy::ModelConfig::FromFile(*dir + "/config.json");
      const auto tokenizer = policy::LoadModelTokenizer(*dir);
      nlohmann::json out = config.ToJson();
      out["parameters"] = config.ParameterCount();
      out["tokenizer_size"] = tokenizer->size();
      std::cout << out.dump(2) << "\n";
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(model, AddModelCommands);

}  // namespace clinrl::cli
