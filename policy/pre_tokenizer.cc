#include "policy/pre_tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <cstdint>

#include "core/error.h"

namespace clinrl::policy {
namespace {

constexpr char kGpt2Regex[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr char kQwen2Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kLlama3Regex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct CodePoint {
  uint32_t cp;
  uint32_t offset;  // byte offset in the text
  CharClass cls;
};

// Decodes one UTF-8 sequence at `i`; returns its length, or 0 when the bytes
// there are not a well-formed sequence.
int DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int len;
  uint32_t v;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    v = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    v = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (int k = 1; k < len; ++k) {
    if (i + k >= s.size()) return 0;
    const uint8_t t = b(i + k);
    if (t < (k == 1 ? lo : 0x80) || t > (k == 1 ? hi : 0xBF)) return 0;
    v = (v << 6) | (t & 0x3F);
  }
  *cp = v;
  return len;
}

// Length of the longest prefix at `i` that could start a valid sequence, for
// the one-U+FFFD-per-maximal-subpart rule.
size_t InvalidRunLength(std::string_view s, size_t i) {
  const uint8_t c = static_cast<uint8_t>(s[i]);
  int len = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  size_t k = 1;
  while (static_cast<int>(k) < len && i + k < s.size()) {
    const uint8_t t = static_cast<uint8_t>(s[i + k]);
    if (t < (k == 1 ? lo : 0x80) || t > (k == 1 ? hi : 0xBF)) break;
    ++k;
  }
  return k;
}

CharClass Classify(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return kLetter;
    if (cp >= '0' && cp <= '9') return kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return kSpace;
    return kOther;
  }
  if (u_isUWhiteSpace(static_cast<UChar32>(cp))) return kSpace;
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return kLetter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return kNumber;
    default:
      return kOther;
  }
}

std::vector<CodePoint> Decode(std::string_view text) {
  std::vector<CodePoint> cps;
  cps.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    uint32_t cp = 0;
    int len = DecodeUtf8(text, i, &cp);
    if (len == 0) {
      cps.push_back({0xFFFD, static_cast<uint32_t>(i), kOther});
      len = 1;
    } else {
      cps.push_back({cp, static_cast<uint32_t>(i), Classify(cp)});
    }
    i += len;
  }
  return cps;
}

bool IsCrLf(uint32_t cp) { return cp == '\r' || cp == '\n'; }

uint32_t Lower(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp == 0x17F) return 's';  // LATIN SMALL LETTER LONG S folds to s
  return cp;
}

// Length in code points of the contraction at i ('s, 't, 're, 've, 'm, 'll,
// 'd), or 0.
size_t MatchContraction(const std::vector<CodePoint>& c, size_t i,
                        bool ignore_case) {
  if (c[i].cp != '\'' || i + 1 >= c.size()) return 0;
  auto at = [&](size_t k) -> uint32_t {
    if (i + k >= c.size()) return 0;
    return ignore_case ? Lower(c[i + k].cp) : c[i + k].cp;
  };
  const uint32_t a = at(1), b = at(2);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
      (a == 'l' && b == 'l')) {
    return 3;
  }
  return 0;
}

// \s+(?!\S) then \s+ from i, a run of spaces ending before `run_end`.
size_t MatchSpaceRun(const std::vector<CodePoint>& c, size_t i,
                     size_t run_end) {
  if (run_end == c.size()) return run_end - i;   // (?!\S) holds at the end
  if (run_end - i >= 2) return run_end - 1 - i;  // leave one for the next word
  return run_end - i;                            // the plain \s+ alternative
}

size_t MatchAt(const std::vector<CodePoint>& c, size_t i,
               SplitPattern pattern) {
  const size_t n = c.size();
  auto cls = [&](size_t k) { return k < n ? c[k].cls : kSpace; };
  auto run = [&](size_t k, CharClass want) {
    while (k < n && c[k].cls == want) ++k;
    return k;
  };
  auto other_run = [&](size_t k) {  // [^\s\p{L}\p{N}]+
    while (k < n && c[k].cls == kOther) ++k;
    return k;
  };

  if (pattern == SplitPattern::kGpt2) {
    if (size_t m = MatchContraction(c, i, false)) return m;
    const size_t j = (c[i].cp == ' ' && i + 1 < n) ? i + 1 : i;
    if (cls(j) == kLetter) return run(j, kLetter) - i;
    if (cls(j) == kNumber) return run(j, kNumber) - i;
    if (cls(j) == kOther) return other_run(j) - i;
    return MatchSpaceRun(c, i, run(i, kSpace));
  }

  if (size_t m = MatchContraction(c, i, true)) return m;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c[i].cls == kLetter) return run(i, kLetter) - i;
  if (!IsCrLf(c[i].cp) && c[i].cls != kNumber && cls(i + 1) == kLetter &&
      i + 1 < n) {
    return run(i + 1, kLetter) - i;
  }
  // \p{N} or \p{N}{1,3}
  if (c[i].cls == kNumber) {
    const size_t max_digits = pattern == SplitPattern::kLlama3 ? 3 : 1;
    size_t k = i;
    while (k < n && k - i < max_digits && c[k].cls == kNumber) ++k;
    return k - i;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  const size_t j = (c[i].cp == ' ' && i + 1 < n) ? i + 1 : i;
  if (cls(j) == kOther) {
    size_t k = other_run(j);
    while (k < n && IsCrLf(c[k].cp)) ++k;
    return k - i;
  }
  // Only white space is left at i.
  const size_t run_end = run(i, kSpace);
  // \s*[\r\n]+ : backtracking leaves the match just after the run's last
  // CR or LF.
  for (size_t k = run_end; k > i; --k) {
    if (IsCrLf(c[k - 1].cp)) return k - i;
  }
  return MatchSpaceRun(c, i, run_end);
}

}  // namespace

const char* SplitPatternRegex(SplitPattern pattern) {
  switch (pattern) {
    case SplitPattern::kGpt2:
      return kGpt2Regex;
    case SplitPattern::kQwen2:
      return kQwen2Regex;
    case SplitPattern::kLlama3:
      return kLlama3Regex;
  }
  return kQwen2Regex;
}

std::optional<SplitPattern> SplitPatternFromRegex(const std::string& regex) {
  for (auto p :
       {SplitPattern::kGpt2, SplitPattern::kQwen2, SplitPattern::kLlama3}) {
    if (regex == SplitPatternRegex(p)) return p;
  }
  return std::nullopt;
}

void SplitText(std::string_view text, SplitPattern pattern,
               std::vector<std::string_view>* pieces) {
  if (text.empty()) return;
  const std::vector<CodePoint> cps = Decode(text);
  size_t i = 0;
  while (i < cps.size()) {
    size_t len = MatchAt(cps, i, pattern);
    if (len == 0) len = 1;  // unreachable for these patterns; stay safe
    const size_t begin = cps[i].offset;
    const size_t end = i + len < cps.size() ? cps[i + len].offset : text.size();
    pieces->push_back(text.substr(begin, end - begin));
    i += len;
  }
}

std::string NormalizeNfc(std::string_view text) {
  bool ascii = true;
  for (char ch : text) {
    if (static_cast<uint8_t>(ch) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return std::string(text);
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const int len = DecodeUtf8(text, i, &cp);
    if (len == 0) return std::string(text);  // invalid UTF-8: leave as is
    i += len;
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) {
    throw InternalError(
        fmt::format("ICU getNFCInstance failed: {}", u_errorName(status)));
  }
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (nfc->isNormalized(in, status) && U_SUCCESS(status)) {
    return std::string(text);
  }
  status = U_ZERO_ERROR;
  const icu::UnicodeString out = nfc->normalize(in, status);
  if (U_FAILURE(status)) {
    throw InternalError(
        fmt::format("ICU NFC normalisation failed: {}", u_errorName(status)));
  }
  std::string result;
  out.toUTF8String(result);
  return result;
}

std::string ToValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    uint32_t cp;
    const int len = DecodeUtf8(bytes, i, &cp);
    if (len > 0) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      i += InvalidRunLength(bytes, i);
    }
  }
  return out;
}

}  // namespace clinrl::policy
