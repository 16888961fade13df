#include "policy/generator.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/error.h"
#include "policy/generation_engine.h"

namespace clinrl::policy {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStopToken:
      return "stop_token";
    case FinishReason::kStopString:
      return "stop_string";
    case FinishReason::kLength:
      return "length";
  }
  return "length";
}

std::vector<GenerationOutput> Generate(
    Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
    const SamplingParams& params, const Tokenizer* tokenizer,
    GenerationStats* stats) {
  params.Validate();  // also for an empty batch
  std::vector<GenerationOutput> outputs(prompts.size());
  if (prompts.empty()) return outputs;
  // One autocast region for the whole loop: under bf16 each weight is cast
  // once per call, not once per step.
  const AutocastGuard autocast(model->device(), model->precision());
  GenerationEngine engine(model, EngineOptions(), tokenizer);
  for (size_t b = 0; b < prompts.size(); ++b) {
    const int64_t sequence = engine.Open(params.seed, b);
    engine.StartTurn(sequence, prompts[b], params,
                     fmt::format("prompts[{}]", b));
  }
  while (engine.busy()) {
    for (FinishedTurn& turn : engine.Step()) {
      outputs[turn.sequence] = std::move(turn.output);
    }
  }
  if (stats != nullptr) *stats = engine.stats();
  return outputs;
}

}  // namespace clinrl::policy
