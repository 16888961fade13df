// Batched generation: the types of a generation's output, and Generate, one
// batch of prompts run to completion on the generation engine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/sampler.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"

namespace clinrl::policy {

enum class FinishReason {
  kStopToken,   // sampled one of stop_token_ids (kept as the last token)
  kStopString,  // the generated text now contains a stop string
  kLength,      // max_new_tokens, or the model's max_position_embeddings
};
const char* FinishReasonName(FinishReason reason);

struct GenerationOutput {
  std::vector<int64_t> token_ids;
  std::vector<float> logprobs;  // sampling-time, one per token
  FinishReason finish_reason = FinishReason::kLength;
};

struct GenerationStats {
  double prefill_seconds = 0;          // steps that computed prompt tokens
  double decode_seconds = 0;           // steps that only decoded
  int64_t prompt_tokens = 0;           // over every turn's prompt
  int64_t cached_prompt_tokens = 0;    // kept from the sequence's own turns
  int64_t shared_prompt_tokens = 0;    // adopted from other sequences
  int64_t computed_prompt_tokens = 0;  // the rest: prefilled
  int64_t generated_tokens = 0;
  int64_t steps = 0;
  int64_t decode_steps = 0;
  int64_t decode_row_steps = 0;      // sum over decode steps of their rows
  int64_t decode_attended_keys = 0;  // sum over rows and steps of keys
};

// Generates for each prompt (token ids, non-empty) with the generation
// engine (policy/generation_engine.h): every prompt starts at once, each
// row decodes until its own stop or length. `tokenizer` is needed only for
// stop strings. Sequence i samples from stream (params.seed, i).
std::vector<GenerationOutput> Generate(
    Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
    const SamplingParams& params, const Tokenizer* tokenizer = nullptr,
    GenerationStats* stats = nullptr);

}  // namespace clinrl::policy
