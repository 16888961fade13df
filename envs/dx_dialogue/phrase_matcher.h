// Finds the concepts a free-text question or action names, through their
// canonical names and synonyms. Text and phrases go through the same
// normalisation (lower case, punctuation to spaces, a crude plural strip), so
// "Any chest-pains?" names "chest pain". Overlapping phrases resolve to the
// longest one, so "pain radiating to back" wins over "back pain".
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace clinrl::envs::dx {

// Lower case words separated by single spaces; apostrophes vanish
// ("bell's" -> "bells" -> "bell"), other punctuation splits words, and a
// trailing "s" is dropped from words longer than three letters.
std::vector<std::string> NormalizedWords(const std::string& text);
std::string NormalizeText(const std::string& text);

class PhraseMatcher {
 public:
  // Throws ConfigError when `phrase` is empty after normalisation or already
  // names a different concept (`what` names the vocabulary in the message).
  void Add(const std::string& phrase, int concept_id, const std::string& what);

  // Concepts named in `text`, in order of appearance, each once.
  std::vector<int> Match(const std::string& text) const;
  // The concept whose phrase is exactly the whole of `text`, or -1.
  int Exact(const std::string& text) const;

 private:
  struct Phrase {
    std::vector<std::string> words;
    std::string original;
    int concept_id;
  };
  std::vector<Phrase> phrases_;
  // Phrases by their first word: a question only tries the phrases that can
  // start at each of its words.
  std::unordered_map<std::string, std::vector<size_t>> by_first_word_;
};

}  // namespace clinrl::envs::dx
