#include "envs/dx_dialogue/phrase_matcher.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace clinrl::envs::dx {

std::vector<std::string> NormalizedWords(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    if (word.size() > 3 && word.back() == 's' && word[word.size() - 2] != 's') {
      word.pop_back();
    }
    words.push_back(word);
    word.clear();
  };
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\'') continue;
    if (std::isalnum(u)) {
      word.push_back(static_cast<char>(std::tolower(u)));
    } else {
      flush();
    }
  }
  flush();
  return words;
}

std::string NormalizeText(const std::string& text) {
  std::string out;
  for (const auto& w : NormalizedWords(text)) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

void PhraseMatcher::Add(const std::string& phrase, int concept_id,
                        const std::string& what) {
  auto words = NormalizedWords(phrase);
  if (words.empty()) {
    throw ConfigError(fmt::format(
        "{}: phrase \"{}\" is empty after normalisation; expected words", what,
        phrase));
  }
  for (const auto& p : phrases_) {
    if (p.words == words) {
      if (p.concept_id == concept_id) return;
      throw ConfigError(fmt::format(
          "{}: phrase \"{}\" names two different concepts (it normalises like "
          "\"{}\"); expected each phrase to name one concept",
          what, phrase, p.original));
    }
  }
  by_first_word_[words[0]].push_back(phrases_.size());
  phrases_.push_back({std::move(words), phrase, concept_id});
}

std::vector<int> PhraseMatcher::Match(const std::string& text) const {
  const auto words = NormalizedWords(text);
  struct Span {
    size_t begin, end;
    int concept_id;
  };
  std::vector<Span> spans;
  for (size_t i = 0; i < words.size(); ++i) {
    const auto it = by_first_word_.find(words[i]);
    if (it == by_first_word_.end()) continue;
    for (size_t k : it->second) {
      const Phrase& p = phrases_[k];
      const size_t n = p.words.size();
      if (i + n <= words.size() &&
          std::equal(p.words.begin(), p.words.end(), words.begin() + i)) {
        spans.push_back({i, i + n, p.concept_id});
      }
    }
  }
  // Longest first, then leftmost: a specific phrase beats the general one it
  // contains.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    if (a.end - a.begin != b.end - b.begin) {
      return a.end - a.begin > b.end - b.begin;
    }
    return a.begin < b.begin;
  });
  std::vector<bool> taken(words.size(), false);
  std::vector<Span> chosen;
  for (const auto& s : spans) {
    bool free = true;
    for (size_t i = s.begin; i < s.end; ++i) free = free && !taken[i];
    if (!free) continue;
    for (size_t i = s.begin; i < s.end; ++i) taken[i] = true;
    chosen.push_back(s);
  }
  std::sort(chosen.begin(), chosen.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::vector<int> out;
  for (const auto& s : chosen) {
    if (std::find(out.begin(), out.end(), s.concept_id) == out.end()) {
      out.push_back(s.concept_id);
    }
  }
  return out;
}

int PhraseMatcher::Exact(const std::string& text) const {
  const auto words = NormalizedWords(text);
  for (const auto& p : phrases_) {
    if (p.words == words) return p.concept_id;
  }
  return -1;
}

}  // namespace clinrl::envs::dx
