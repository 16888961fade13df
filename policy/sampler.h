// Token sampling for generation: temperature, top-k, top-p over a batch of
// logits, each sequence drawing from its own seeded stream so the tokens of a
// sequence do not depend on which other sequences share its batch.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::policy {

struct SamplingParams {
  double temperature = 1.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = no limit
  double top_p = 1.0;        // 1 = no limit
  int64_t max_new_tokens = 128;
  std::vector<std::string> stop_strings;
  std::vector<int64_t> stop_token_ids;
  uint64_t seed = 0;
  // -1: off (no cost). K >= 0: the engine also reports, per sampled token,
  // log softmax of the raw logits (temperature 1, before top-k/top-p) of
  // that token and of the K most likely ones (TokenLogprobs), as OpenAI's
  // logprobs/top_logprobs and vLLM's default "raw_logprobs" do.
  int64_t top_logprobs = -1;

  // Throws BadRequest naming the field and the allowed range.
  void Validate() const;
  // Reads the fields above from a JSON object; `where` names it in errors.
  static SamplingParams FromJson(const nlohmann::json& doc,
                                 const std::string& where);
};

// splitmix64-seeded xoshiro256** stream: identical on every platform,
// unlike the distributions of <random>.
class SequenceRng {
 public:
  SequenceRng(uint64_t seed, uint64_t stream);
  uint64_t Next();
  double Uniform();  // [0, 1) with 53 random bits

 private:
  uint64_t s_[4];
};

// Logits [N, V] (already divided by the temperature) with every token
// outside the top-k / top-p support set to -inf. top-k keeps the k largest
// (ties broken by lower id); top-p then keeps, in descending order, each
// token whose preceding cumulative probability is below p (so the smallest
// prefix reaching p, and always the most likely token).
at::Tensor FilterTopKTopP(const at::Tensor& scaled_logits, int64_t top_k,
                          double top_p);

struct SampledTokens {
  std::vector<int64_t> ids;
  // log softmax(logits / temperature) of each sampled token (plain log
  // softmax when greedy); top-k/top-p do not renormalise it.
  std::vector<float> logprobs;
};

// Samples one token per row of logits [N, V]; rngs[i] drives row i.
SampledTokens SampleTokens(const at::Tensor& logits,
                           const SamplingParams& params,
                           const std::vector<SequenceRng*>& rngs);

// One sampled token's log-probs under log softmax of the raw logits.
struct TokenLogprobs {
  float logprob = 0;                // of the sampled token
  std::vector<int64_t> top_ids;     // the K most likely, descending
  std::vector<float> top_logprobs;  // theirs, from the same tensor as logprob
};

// For each row of raw logits [N, V]: the log-prob of ids[i] and the top_k[i]
// most likely tokens. Both come from one log_softmax, so a sampled token in
// its row's top list has there exactly its `logprob`.
std::vector<TokenLogprobs> RawTokenLogprobs(const at::Tensor& logits,
                                            const std::vector<int64_t>& ids,
                                            const std::vector<int64_t>& top_k);

}  // namespace clinrl::policy
