#include "envs/wrappers/word_swap.h"

#include <cctype>

namespace clinrl::envs {
namespace {

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

std::string Lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

}  // namespace

std::string InCaseOf(const std::string& source,
                     const std::string& replacement) {
  bool has_lower = false;
  bool letters = false;
  for (char c : source) {
    letters = letters || std::isalpha(static_cast<unsigned char>(c));
    has_lower = has_lower || std::islower(static_cast<unsigned char>(c));
  }
  std::string out = replacement;
  // One capital letter ("I") is a capitalised word, not an acronym.
  if (letters && !has_lower && source.size() > 1) {
    for (char& c : out) {
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  } else if (!source.empty() &&
             std::isupper(static_cast<unsigned char>(source[0])) &&
             !out.empty()) {
    out[0] =
        static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  }
  return out;
}

std::string SwapWords(const std::string& text,
                      const std::map<std::string, std::string>& swaps) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (!IsWordChar(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i;
    while (j < text.size() && IsWordChar(text[j])) ++j;
    const std::string word = text.substr(i, j - i);
    const auto it = swaps.find(Lower(word));
    out += it == swaps.end() ? word : InCaseOf(word, it->second);
    i = j;
  }
  return out;
}

}  // namespace clinrl::envs
