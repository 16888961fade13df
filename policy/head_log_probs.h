// Per-token log-probs (and entropies) of the output head without keeping the
// logits: the learner's largest activation. For a batch of N tokens the
// logits are N x vocab floats (8192 tokens of Qwen2.5's 151936-token vocab
// are 5 GB); this computes them a chunk of tokens at a time, keeps one float
// per token (the log-sum-exp, and the entropy), and recomputes each chunk in
// backward. The gradients are those of log_softmax over the full logits.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "policy/precision.h"

namespace clinrl::policy {

class TransformerImpl;

struct HeadLogProbsOptions {
  // Log-probs of softmax(logits / temperature); 0 or 1: plain softmax.
  double temperature = 1.0;
  // Products in bfloat16 under kBf16 (as autocast runs the head), else in
  // the weight's dtype; softmax statistics are always float32.
  Precision precision = Precision::kFp32;
  // Tokens per chunk; 0 picks one that keeps a chunk's logits near 64 MiB
  // (at least 256 tokens, so that the products stay large).
  int64_t chunk_tokens = 0;
  // Also the entropies (one more pass over each chunk's logits).
  bool entropy = true;
};

struct HeadLogProbs {
  torch::Tensor logprobs;  // float32 [...]: log p(target)
  torch::Tensor entropy;   // float32 [...]: each token's softmax entropy
                           // (undefined unless options.entropy)
};

// hidden [..., H] (final-norm hidden states), weight [V, H] (the output head,
// or the tied embedding), targets [...] int64 in [0, V). Differentiable in
// hidden and weight through both outputs.
HeadLogProbs ChunkedHeadLogProbs(const torch::Tensor& hidden,
                                 const torch::Tensor& weight,
                                 const torch::Tensor& targets,
                                 const HeadLogProbsOptions& options = {});

// The model's output-head weight [V, H]: lm_head, or the embedding when tied.
const torch::Tensor& HeadWeight(TransformerImpl& model);

}  // namespace clinrl::policy
