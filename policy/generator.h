// Batched generation with a KV cache: variable-length prompts are left-padded
// and prefilled in one pass, then one token per step is decoded for every
// unfinished sequence; finished sequences leave the batch (and the cache).
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
  double prefill_seconds = 0;
  double decode_seconds = 0;
  int64_t prompt_tokens = 0;         // real (unpadded) prompt tokens
  int64_t cached_prompt_tokens = 0;  // of those, taken from `kv`
  int64_t padded_prompt_tokens = 0;  // prefilled slots, padding included
  int64_t generated_tokens = 0;
  int64_t decode_steps = 0;
  int64_t decode_row_steps = 0;      // sum over steps of the rows computed
  int64_t decode_attended_keys = 0;  // sum over rows and steps of key slots
};

// Generates for each prompt (token ids, non-empty). `tokenizer` is needed
// only for stop strings. Sequence i samples from stream (params.seed, i).
//
// `kv` (optional, one per prompt) carries keys and values between calls for
// multi-turn use: on entry kv[i] covers the first kv[i].length tokens of
// prompt i (length 0: none; always fewer than the prompt), which are not
// recomputed; on return it covers prompt i and every generated token but the
// last, so the next turn's prompt, if it extends this one verbatim, prefills
// only what is new. The caller must drop `kv` when the weights change.
std::vector<GenerationOutput> Generate(
    Transformer& model, const std::vector<std::vector<int64_t>>& prompts,
    const SamplingParams& params, const Tokenizer* tokenizer = nullptr,
    GenerationStats* stats = nullptr, std::vector<SequenceKv>* kv = nullptr);

}  // namespace clinrl::policy
