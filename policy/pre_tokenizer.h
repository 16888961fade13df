// The split step of byte-level BPE tokenizers: the regexes of the GPT-2,
// Qwen2/Qwen3 and Llama 3 tokenizer.json files, matched by hand over Unicode
// code points (letters \p{L}, numbers \p{N} and \s White_Space from ICU) with
// the regex's leftmost-alternative semantics, plus the NFC normaliser.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clinrl::policy {

enum class SplitPattern {
  kGpt2,    // 's|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kQwen2,   // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+...
  kLlama3,  // as kQwen2 with \p{N}{1,3}
};

// The exact regex string a tokenizer.json carries for `pattern`.
const char* SplitPatternRegex(SplitPattern pattern);
// Which pattern a tokenizer.json regex is; nullopt for any other regex.
std::optional<SplitPattern> SplitPatternFromRegex(const std::string& regex);

// Appends the pieces of `text` to `pieces` (views into `text`); their
// concatenation is `text`. Bytes that are not valid UTF-8 count as symbols
// (neither letter, number nor space), each on its own code point.
void SplitText(std::string_view text, SplitPattern pattern,
               std::vector<std::string_view>* pieces);

// Unicode NFC; ASCII and invalid UTF-8 come back unchanged.
std::string NormalizeNfc(std::string_view text);

// Replaces ill-formed UTF-8 sequences by U+FFFD, one per maximal invalid
// subpart (as Rust's String::from_utf8_lossy, which HF decoding uses).
std::string ToValidUtf8(std::string_view bytes);

}  // namespace clinrl::policy
