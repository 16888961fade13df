#include "envs/med_calc/answer.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace clinrl::envs::med_calc {

namespace {

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }

// Where the text after the last "ANSWER:" starts, or npos. Asterisks and
// blanks may sit between the tag and its colon ("**Answer:** 5").
size_t AfterLastTag(const std::string& action) {
  static const std::string kTag = "answer";
  size_t found = std::string::npos;
  for (size_t i = 0; i + kTag.size() <= action.size(); ++i) {
    size_t k = 0;
    while (k < kTag.size() &&
           std::tolower(static_cast<unsigned char>(action[i + k])) == kTag[k]) {
      ++k;
    }
    if (k < kTag.size()) continue;
    size_t j = i + kTag.size();
    while (j < action.size() && (action[j] == ' ' || action[j] == '*')) ++j;
    if (j < action.size() && action[j] == ':') found = j + 1;
  }
  return found;
}

// A comma followed by exactly three digits, as in "1,250".
bool ThousandsComma(const std::string& s, size_t j) {
  return j + 3 < s.size() && IsDigit(s[j + 1]) && IsDigit(s[j + 2]) &&
         IsDigit(s[j + 3]) && (j + 4 == s.size() || !IsDigit(s[j + 4]));
}

// The first number of `text` up to the end of its line: sign, digits with
// optional thousands commas ("1,250"), optional fraction.
std::optional<double> FirstNumber(const std::string& text) {
  const std::string line = text.substr(0, text.find('\n'));
  for (size_t i = 0; i < line.size(); ++i) {
    // ".5" and "-.5" start a number as "0.5" does.
    const auto starts_digits = [&](size_t at) {
      return at < line.size() &&
             (IsDigit(line[at]) || (line[at] == '.' && at + 1 < line.size() &&
                                    IsDigit(line[at + 1])));
    };
    // A digit inside a word ("CHA2DS2-VASc = 3", "SpO2") belongs to a name.
    if (i > 0 && IsDigit(line[i]) &&
        std::isalpha(static_cast<unsigned char>(line[i - 1]))) {
      while (i + 1 < line.size() && IsDigit(line[i + 1])) ++i;
      continue;
    }
    const bool sign =
        (line[i] == '-' || line[i] == '+') && starts_digits(i + 1);
    if (!starts_digits(i) && !sign) continue;
    std::string digits(1, line[i]);
    size_t j = i + 1;
    bool seen_dot = line[i] == '.';
    while (j < line.size()) {
      const char c = line[j];
      if (IsDigit(c)) {
        digits += c;
      } else if (c == ',' && !seen_dot && ThousandsComma(line, j)) {
        // a thousands separator: exactly three digits follow
      } else if (c == '.' && !seen_dot && j + 1 < line.size() &&
                 IsDigit(line[j + 1])) {
        seen_dot = true;
        digits += c;
      } else {
        break;
      }
      ++j;
    }
    return std::strtod(digits.c_str(), nullptr);
  }
  return std::nullopt;
}

}  // namespace

ParsedAnswer ParseAnswer(const std::string& action) {
  ParsedAnswer parsed;
  const size_t start = AfterLastTag(action);
  if (start == std::string::npos) {
    parsed.error =
        "no 'ANSWER: <number>' line found; end your reply with the tag "
        "ANSWER, a colon and the number";
    return parsed;
  }
  const auto value = FirstNumber(action.substr(start));
  if (!value || !std::isfinite(*value)) {
    parsed.error =
        "the last 'ANSWER:' is not followed by a number on its line; write "
        "e.g. 'ANSWER: 42.5'";
    return parsed;
  }
  parsed.value = *value;
  return parsed;
}

bool IsCorrect(double answer, double expected, bool score) {
  const double tolerance = score ? 0.0 : kFormulaTolerance;
  return std::fabs(answer - expected) <= tolerance * std::fabs(expected);
}

}  // namespace clinrl::envs::med_calc
