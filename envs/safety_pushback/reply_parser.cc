#include "envs/safety_pushback/reply_parser.h"

#include <fmt/format.h>

#include <cctype>
#include <sstream>

namespace clinrl::envs::safety {

namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)); }

std::string Lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The text after 'TAG:' when `line` is a tagged line, markdown decoration
// (bullets, quotes, bold) around the tag ignored.
std::optional<std::string> TaggedValue(const std::string& line,
                                       const std::string& tag) {
  size_t i = line.find_first_not_of(" \t*-#>_");
  if (i == std::string::npos) return std::nullopt;
  if (Lower(line.substr(i, tag.size())) != Lower(tag)) return std::nullopt;
  i = line.find_first_not_of(" \t*_", i + tag.size());
  if (i == std::string::npos || line[i] != ':') return std::nullopt;
  const size_t start = line.find_first_not_of(" \t*_([", i + 1);
  return start == std::string::npos ? "" : line.substr(start);
}

// The last line tagged `tag`, if any.
std::optional<std::string> LastTagged(const std::string& reply,
                                      const std::string& tag) {
  std::istringstream lines(reply);
  std::optional<std::string> last;
  for (std::string line; std::getline(lines, line);) {
    if (auto value = TaggedValue(line, tag)) last = value;
  }
  return last;
}

// 'b', 'B) no', 'B. because': a choice's letter standing alone.
std::optional<std::string> LetterOf(const std::string& value,
                                    const SafetyCase& c) {
  if (value.empty() || (value.size() > 1 && IsAlnum(value[1]))) {
    return std::nullopt;
  }
  const std::string letter(
      1, static_cast<char>(std::toupper(static_cast<unsigned char>(value[0]))));
  for (const auto& choice : c.Choices()) {
    if (choice == letter) return letter;
  }
  return std::nullopt;
}

// 'Emergency', 'self care', 'self-care now': a disposition standing alone.
std::optional<std::string> DispositionOf(std::string value) {
  value = Lower(value);
  for (char& ch : value) {
    if (ch == ' ' || ch == '-') ch = '_';
  }
  if (value.rfind("selfcare", 0) == 0) value.insert(4, "_");
  for (const auto& disposition : Dispositions()) {
    if (value.rfind(disposition, 0) == 0 &&
        (value.size() == disposition.size() ||
         !IsAlnum(value[disposition.size()]))) {
      return disposition;
    }
  }
  return std::nullopt;
}

std::string Excerpt(const std::string& s) {
  std::string out = s.substr(0, 60);
  for (char& ch : out) {
    if (!std::isprint(static_cast<unsigned char>(ch))) ch = '?';
  }
  return out;
}

}  // namespace

ParsedReply ParseReply(const std::string& reply, const SafetyCase& c) {
  const bool red_flag = c.type == CaseType::kRedFlag;
  const std::string tag = red_flag ? "DISPOSITION" : "ANSWER";
  const std::string other = red_flag ? "ANSWER" : "DISPOSITION";
  ParsedReply parsed;
  const auto value = LastTagged(reply, tag);
  if (!value) {
    parsed.error =
        LastTagged(reply, other)
            ? fmt::format("this case takes '{}:', not '{}:'", tag, other)
            : fmt::format("no line starting with '{}:'", tag);
    return parsed;
  }
  parsed.answer = red_flag ? DispositionOf(*value) : LetterOf(*value, c);
  if (!parsed.answer) {
    std::string choices;
    for (const auto& choice : c.Choices()) {
      choices += (choices.empty() ? "" : ", ") + choice;
    }
    parsed.error = fmt::format("'{}: {}' names none of: {}", tag,
                               Excerpt(*value), choices);
  }
  return parsed;
}

}  // namespace clinrl::envs::safety
