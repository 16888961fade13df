// `clinrl generate --model DIR --prompt TEXT`: samples completions from a
// model folder, printing the text, or with --json the token ids, their
// sampling-time log-probs and the finish reason.
#include <algorithm>
#include <iostream>
#include <optional>

#include "cli/command_registry.h"
#include "core/error.h"
#include "policy/chat_format.h"
#include "policy/generator.h"
#include "policy/model_dir.h"

namespace clinrl::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::vector<std::string> prompts;
  bool chat = false;
  std::string system;
  int64_t num = 1;
  int64_t threads = 0;
  std::string dtype = "float32";
  bool json = false;
  bool no_default_stop = false;
  policy::SamplingParams sampling;
};

void AddGenerateCommand(CLI::App& app) {
  auto* gen = app.add_subcommand("generate", "sample text from a model folder");
  auto a = std::make_shared<GenerateArgs>();
  gen->add_option("--model", a->model, "model folder")->required();
  gen->add_option("--prompt", a->prompts, "prompt text (repeat for a batch)")
      ->required();
  gen->add_flag("--chat", a->chat,
                "wrap each prompt as a user turn in the model's chat "
                "template and open the assistant turn");
  gen->add_option("--system", a->system, "system message for --chat");
  gen->add_option("--num", a->num, "completions per prompt");
  gen->add_option("--max-new-tokens", a->sampling.max_new_tokens,
                  "tokens to generate at most");
  gen->add_option("--temperature", a->sampling.temperature, "0 = greedy");
  gen->add_option("--top-k", a->sampling.top_k, "0 = off");
  gen->add_option("--top-p", a->sampling.top_p, "1 = off");
  gen->add_option("--seed", a->sampling.seed, "sampling seed");
  gen->add_option("--stop", a->sampling.stop_strings, "stop string(s)");
  gen->add_option("--stop-id", a->sampling.stop_token_ids, "stop token id(s)");
  gen->add_flag("--no-default-stop", a->no_default_stop,
                "do not stop at the end of turn or end of text");
  gen->add_option("--threads", a->threads, "intra-op threads, 0 = all cores");
  gen->add_option("--dtype", a->dtype, "float32 | bfloat16 | float16");
  gen->add_flag("--json", a->json, "print one JSON object per completion");
  gen->callback([a] {
    const int rc = RunCommand([&] {
      policy::SetComputeThreads(a->threads);
      policy::ModelLoadOptions load;
      load.dtype = a->dtype;
      policy::Transformer model = policy::LoadModel(a->model, load);
      const auto tokenizer = policy::LoadModelTokenizer(a->model);
      // The chat format only for --chat: plain generation works on any
      // model, whatever its template.
      std::optional<policy::ChatFormat> format;
      if (a->chat) format.emplace(*tokenizer);
      policy::SamplingParams params = a->sampling;
      if (!a->no_default_stop) {
        // The model's own eos ids too (config.json), as transformers'
        // generate stops on them, chat or not.
        const std::vector<int64_t>& model_eos = model->config().eos_token_ids;
        std::vector<int64_t> stops;
        if (format) {
          stops = format->StopIds(model_eos);
        } else {
          stops = tokenizer->DefaultStopIds();
          stops.insert(stops.end(), model_eos.begin(), model_eos.end());
        }
        for (int64_t id : stops) {
          if (std::find(params.stop_token_ids.begin(),
                        params.stop_token_ids.end(),
                        id) == params.stop_token_ids.end()) {
            params.stop_token_ids.push_back(id);
          }
        }
      }
      if (a->num < 1) {
        throw BadRequest(
            fmt::format("--num: {} is not allowed; expected >= 1", a->num));
      }
      std::vector<std::vector<int64_t>> batch;
      std::vector<std::string> texts;
      for (const auto& p : a->prompts) {
        std::string text = p;
        if (a->chat) {
          // The model's own chat template, as `clinrl serve` prompts it.
          nlohmann::ordered_json messages = nlohmann::ordered_json::array();
          if (!a->system.empty()) {
            messages.push_back({{"role", "system"}, {"content", a->system}});
          }
          messages.push_back({{"role", "user"}, {"content", p}});
          text = format->Prompt(messages, nullptr);
        }
        for (int64_t i = 0; i < a->num; ++i) {
          batch.push_back(tokenizer->Encode(text));
          texts.push_back(p);
        }
      }
      const auto outputs =
          policy::Generate(model, batch, params, tokenizer.get());
      for (size_t i = 0; i < outputs.size(); ++i) {
        const auto& o = outputs[i];
        const std::string completion = tokenizer->Decode(o.token_ids, true);
        if (a->json) {
          std::cout << nlohmann::json{{"prompt", texts[i]},
                                      {"completion", completion},
                                      {"token_ids", o.token_ids},
                                      {"logprobs", o.logprobs},
                                      {"finish_reason",
                                       policy::FinishReasonName(
                                           o.finish_reason)}}
                           .dump()
                    << "\n";
        } else {
          std::cout << completion << "\n";
        }
      }
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(generate, AddGenerateCommand);

}  // namespace clinrl::cli
