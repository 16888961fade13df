#include "envs/dx_dialogue/dx_action.h"

#include <cctype>
#include <utility>
#include <vector>

namespace clinrl::envs::dx {

const char* ActionTypeName(ActionType t) {
  switch (t) {
    case ActionType::kAsk:
      return "ask";
    case ActionType::kExam:
      return "exam";
    case ActionType::kTest:
      return "test";
    case ActionType::kDisposition:
      return "disposition";
    case ActionType::kDiagnosis:
      return "diagnosis";
    case ActionType::kInvalid:
      return "invalid";
  }
  return "?";
}

namespace {

bool IsSpace(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && IsSpace(s[b])) ++b;
  while (e > b && IsSpace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace

DxAction ParseAction(const std::string& text) {
  std::string line;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    line = Trim(text.substr(pos, end - pos));
    if (!line.empty()) break;
    if (end == text.size()) break;
    pos = end + 1;
  }
  size_t i = 0;
  while (i < line.size() && (line[i] == '*' || line[i] == '-' ||
                             line[i] == '#' || IsSpace(line[i]))) {
    ++i;
  }
  size_t j = i;
  while (j < line.size() && std::isalpha(static_cast<unsigned char>(line[j])))
    ++j;
  std::string verb;
  for (size_t k = i; k < j; ++k) {
    verb.push_back(
        static_cast<char>(std::tolower(static_cast<unsigned char>(line[k]))));
  }
  static const std::vector<std::pair<const char*, ActionType>> verbs = {
      {"ask", ActionType::kAsk},
      {"exam", ActionType::kExam},
      {"examine", ActionType::kExam},
      {"test", ActionType::kTest},
      {"order", ActionType::kTest},
      {"disposition", ActionType::kDisposition},
      {"dispo", ActionType::kDisposition},
      {"diagnosis", ActionType::kDiagnosis},
      {"diagnose", ActionType::kDiagnosis},
      {"dx", ActionType::kDiagnosis},
  };
  DxAction action;
  for (const auto& [name, type] : verbs) {
    if (verb == name) action.type = type;
  }
  if (action.type == ActionType::kInvalid) return action;
  while (j < line.size() && (line[j] == '*' || IsSpace(line[j]))) ++j;
  if (j < line.size() && (line[j] == ':' || line[j] == '-')) ++j;
  while (j < line.size() && (line[j] == '*' || IsSpace(line[j]))) ++j;
  // Arguments are names and short questions; a runaway generation is cut
  // so that matching stays cheap.
  action.argument = Trim(line.substr(j, kMaxArgumentChars));
  while (!action.argument.empty() &&
         (action.argument.back() == '.' || action.argument.back() == '?' ||
          action.argument.back() == '*')) {
    action.argument.pop_back();
  }
  if (action.argument.empty()) action.type = ActionType::kInvalid;
  return action;
}

namespace {

// Drops a leading "1.", "2)", "#3" or "4:" (a rank marker) from an item.
std::string WithoutRankMarker(const std::string& item) {
  size_t i = 0;
  if (i < item.size() && item[i] == '#') ++i;
  const size_t digits = i;
  while (i < item.size() && std::isdigit(static_cast<unsigned char>(item[i])))
    ++i;
  if (i == digits) return item;
  if (i < item.size() && (item[i] == '.' || item[i] == ')' || item[i] == ':'))
    ++i;
  // "1.5" would be a number, not a marker; a marker ends in a blank or at the
  // end of the item.
  if (i < item.size() && !IsSpace(item[i])) return item;
  return Trim(item.substr(i));
}

}  // namespace

std::vector<std::string> SplitDifferential(const std::string& argument) {
  std::vector<std::string> items;
  size_t pos = 0;
  while (pos <= argument.size()) {
    size_t end = argument.find(';', pos);
    if (end == std::string::npos) end = argument.size();
    std::string item = WithoutRankMarker(Trim(argument.substr(pos, end - pos)));
    while (!item.empty() && (item.back() == '.' || item.back() == ',')) {
      item.pop_back();
    }
    if (!item.empty()) items.push_back(item);
    pos = end + 1;
  }
  return items;
}

}  // namespace clinrl::envs::dx
