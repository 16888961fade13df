#include "policy/bpe_trainer.h"

#include <fmt/format.h>

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "policy/pre_tokenizer.h"

namespace clinrl::policy {
namespace {

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
         static_cast<uint32_t>(b);
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

struct Candidate {
  int64_t count;
  uint64_t pair;
};

}  // namespace

std::unique_ptr<BpeTokenizer> TrainBpeTokenizer(
    std::string_view corpus, const BpeTrainerOptions& options) {
  const int64_t specials = static_cast<int64_t>(options.special_tokens.size());
  if (options.vocab_size < 256 + specials) {
    throw BadRequest(fmt::format(
        "vocab_size: {} is too small; expected at least 256 bytes + {} "
        "special tokens = {}",
        options.vocab_size, specials, 256 + specials));
  }
  if (options.min_frequency < 1) {
    throw BadRequest(
        fmt::format("min_frequency: {} is not allowed; expected "
                    ">= 1",
                    options.min_frequency));
  }

  // Piece counts; special tokens in the corpus separate text but are not
  // learned from.
  std::unordered_map<std::string, int64_t> piece_counts;
  std::vector<std::string_view> pieces;
  auto count_text = [&](std::string_view text) {
    if (text.empty()) return;
    const std::string normalized = NormalizeNfc(text);
    pieces.clear();
    SplitText(normalized, options.pattern, &pieces);
    for (auto p : pieces) ++piece_counts[std::string(p)];
  };
  size_t start = 0;
  for (size_t i = 0; i < corpus.size();) {
    bool hit = false;
    for (const auto& s : options.special_tokens) {
      if (!s.empty() && corpus.compare(i, s.size(), s) == 0) {
        count_text(corpus.substr(start, i - start));
        i += s.size();
        start = i;
        hit = true;
        break;
      }
    }
    if (!hit) ++i;
  }
  count_text(corpus.substr(start));

  std::vector<std::string> token_bytes;
  std::unordered_map<std::string, int32_t> token_ids;
  for (int b = 0; b < 256; ++b) {
    token_bytes.emplace_back(1, static_cast<char>(b));
    token_ids[token_bytes.back()] = b;
  }
  std::vector<Word> words;
  words.reserve(piece_counts.size());
  for (const auto& [piece, count] : piece_counts) {
    Word w{{}, count};
    for (char c : piece) w.symbols.push_back(static_cast<uint8_t>(c));
    words.push_back(std::move(w));
  }

  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::unordered_set<int32_t>> where;
  for (int32_t w = 0; w < static_cast<int32_t>(words.size()); ++w) {
    const auto& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = PairKey(s[i], s[i + 1]);
      pair_counts[k] += words[w].count;
      where[k].insert(w);
    }
  }
  // Max-heap on count; equal counts prefer the pair whose bytes sort first.
  auto worse = [&](const Candidate& x, const Candidate& y) {
    if (x.count != y.count) return x.count < y.count;
    const auto& xa = token_bytes[x.pair >> 32];
    const auto& ya = token_bytes[y.pair >> 32];
    if (xa != ya) return xa > ya;
    return token_bytes[x.pair & 0xFFFFFFFFu] >
           token_bytes[y.pair & 0xFFFFFFFFu];
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(
      worse);
  for (const auto& [k, c] : pair_counts) heap.push({c, k});

  std::vector<std::pair<std::string, std::string>> merges;
  const int64_t target_tokens = options.vocab_size - specials;
  while (static_cast<int64_t>(token_bytes.size()) < target_tokens &&
         !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    auto it = pair_counts.find(top.pair);
    const int64_t current = it == pair_counts.end() ? 0 : it->second;
    if (current != top.count) {  // stale entry
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < options.min_frequency) break;
    const int32_t a = static_cast<int32_t>(top.pair >> 32);
    const int32_t b = static_cast<int32_t>(top.pair & 0xFFFFFFFFu);
    const std::string merged = token_bytes[a] + token_bytes[b];
    merges.emplace_back(token_bytes[a], token_bytes[b]);
    int32_t new_id;
    auto existing = token_ids.find(merged);
    if (existing != token_ids.end()) {
      new_id = existing->second;
    } else {
      new_id = static_cast<int32_t>(token_bytes.size());
      token_bytes.push_back(merged);
      token_ids.emplace(merged, new_id);
    }
    const std::vector<int32_t> affected(where[top.pair].begin(),
                                        where[top.pair].end());
    std::unordered_set<uint64_t> changed;
    for (int32_t w : affected) {
      Word& word = words[w];
      auto& s = word.symbols;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = PairKey(s[i], s[i + 1]);
        pair_counts[k] -= word.count;
        changed.insert(k);
      }
      std::vector<int32_t> next;
      next.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(new_id);
          ++i;
        } else {
          next.push_back(s[i]);
        }
      }
      s.swap(next);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = PairKey(s[i], s[i + 1]);
        pair_counts[k] += word.count;
        where[k].insert(w);
        changed.insert(k);
      }
    }
    pair_counts.erase(top.pair);
    where.erase(top.pair);
    for (uint64_t k : changed) {
      auto c = pair_counts.find(k);
      if (c != pair_counts.end() && c->second > 0) heap.push({c->second, k});
    }
  }
  return BpeTokenizer::FromByteMerges(merges, options.special_tokens,
                                      options.pattern);
}

}  // namespace clinrl::policy
