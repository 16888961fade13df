// `clinrl model init --config tiny.json --out DIR`: a randomly initialised
// Hugging Face style model folder; `clinrl model info --model DIR`.
#include <iostream>

#include "cli/command_registry.h"
#include "core/config.h"
#include "policy/model_config.h"
#include "policy/model_dir.h"

namespace clinrl::cli {
namespace {

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
