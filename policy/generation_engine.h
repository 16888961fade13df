// The generation engine: continuous batching over a paged KV cache.
//
// Sequences live as long as their owner wants (an episode: every turn of
// it). A turn starts with the sequence's whole history; the engine keeps the
// keys and values of the longest prefix it already holds (the earlier turns,
// or blocks another sequence registered with the same tokens) and computes
// only the rest. Each Step() is one forward over every running turn: the
// new tokens of turns that just started (prefill) and one token for each
// turn already decoding, packed in one row; then one sampling call for all
// of them. A turn that started while others decode joins the next step; a
// finished one leaves it, and its sequence keeps its blocks for its next
// turn until Close().
//
// Each sequence samples from its own seeded stream, so its tokens do not
// depend on the others in its steps; the floating-point rounding of a step
// can, which is why a caller that needs exact repeats (a resumed run) keeps
// the step composition a function of the seed (rollout.schedule
// "synchronous").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/generator.h"
#include "policy/paged_attention.h"
#include "policy/paged_kv_cache.h"

namespace clinrl::policy {

struct EngineOptions {
  int64_t block_size = 16;      // tokens per KV block
  int64_t initial_blocks = 64;  // the pool doubles when it runs out
  bool prefix_sharing = true;   // adopt blocks other sequences registered
};

struct FinishedTurn {
  int64_t sequence = 0;
  GenerationOutput output;
  // One per token of `output` when the turn's params.top_logprobs >= 0,
  // else empty.
  std::vector<TokenLogprobs> token_logprobs;
};

class GenerationEngine {
 public:
  // `tokenizer` is needed only for stop strings.
  GenerationEngine(Transformer model, EngineOptions options = {},
                   const Tokenizer* tokenizer = nullptr);

  // A new sequence sampling from stream (seed, stream); returns its id.
  int64_t Open(uint64_t seed, uint64_t stream);
  // Starts a turn of an idle sequence. `tokens` is its whole history: the
  // earlier turns' tokens (for the engine's cache to be reused, verbatim,
  // sampled tokens included) and then the new ones; at least one token.
  // Errors about `tokens` name it `field`.
  void StartTurn(int64_t sequence, const std::vector<int64_t>& tokens,
                 const SamplingParams& params,
                 const std::string& field = "tokens");
  // One forward and one sampling call over every running turn; returns the
  // turns that finished in it.
  std::vector<FinishedTurn> Step();
  // Whether any turn is running.
  bool busy() const;
  // Frees the sequence's blocks.
  void Close(int64_t sequence);
  // The running turn's tokens and log-probs so far (empty when the sequence
  // is idle): what a streaming caller sends after each Step.
  const GenerationOutput& running_output(int64_t sequence) const;
  // Its raw log-probs so far (params.top_logprobs >= 0; else empty).
  const std::vector<TokenLogprobs>& running_token_logprobs(
      int64_t sequence) const;

  const GenerationStats& stats() const { return stats_; }
  PagedKvCacheStats cache_stats() const { return cache_.stats(); }
  Transformer& model() { return model_; }

 private:
  enum class State { kIdle, kPrefill, kDecode };
  struct Sequence {
    Sequence(uint64_t seed, uint64_t stream) : rng(seed, stream) {}
    SequenceRng rng;
    std::vector<int64_t> tokens;  // history: prompts and sampled tokens
    State state = State::kIdle;
    SamplingParams params;  // of the running turn
    int64_t max_new = 0;
    GenerationOutput out;  // of the running turn
    // Its raw log-probs, when params.top_logprobs >= 0.
    std::vector<TokenLogprobs> token_logprobs;
    std::string text;  // its bytes, for stop strings
  };
  // One sequence's part of a step: `count` new tokens from `first`.
  struct Row {
    int64_t sequence = 0;
    int64_t first = 0;
    int64_t count = 0;
  };
  std::vector<Row> Schedule();
  // Records the raw log-probs of the sampled tokens of the rows (of
  // `logits` [members, V]) whose turns asked for them.
  void RecordTokenLogprobs(const at::Tensor& logits,
                           const std::vector<int64_t>& sequences,
                           const std::vector<int64_t>& sampled_ids);
  // Appends the sampled token; true when the turn ends with it.
  bool Accept(Sequence& s, int64_t token, float logprob);

  Transformer model_;
  EngineOptions options_;
  const Tokenizer* tokenizer_;
  PagedKvCache cache_;
  PagedAttention attention_;
  std::map<int64_t, Sequence> sequences_;  // by id: a fixed step order
  GenerationStats stats_;
};

}  // namespace clinrl::policy
