// Trains a byte-level BPE tokenizer on a text corpus, so tiny models trained
// on clinical text see a few thousand merged tokens instead of raw bytes. The
// result is a tokenizer.json that transformers loads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/bpe_tokenizer.h"

namespace clinrl::policy {

struct BpeTrainerOptions {
  int64_t vocab_size = 4096;  // bytes + merges + special tokens
  int64_t min_frequency = 2;  // a pair seen fewer times is not merged
  std::vector<std::string> special_tokens = DefaultSpecialTokens();
  SplitPattern pattern = SplitPattern::kQwen2;
};

// Counts the pieces of `corpus` (NFC, split by the pattern; special tokens
// written in the text are not split into pieces) and merges the most
// frequent adjacent pair until the vocabulary is full. Ties go to the pair
// whose byte strings sort first, so training is deterministic.
std::unique_ptr<BpeTokenizer> TrainBpeTokenizer(
    std::string_view corpus, const BpeTrainerOptions& options);

}  // namespace clinrl::policy
