#include "rewards/answer_extraction.h"

#include <cctype>
#include <sstream>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::rewards {

bool IsPolicyTurn(const Turn& turn) { return turn.role == "assistant"; }

const Turn* LastPolicyTurn(const Trajectory& trajectory) {
  for (auto it = trajectory.turns.rbegin(); it != trajectory.turns.rend();
       ++it) {
    if (IsPolicyTurn(*it)) return &*it;
  }
  return nullptr;
}

std::string Trim(std::string_view text) {
  size_t b = 0;
  size_t e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  return std::string(text.substr(b, e - b));
}

std::string ToLower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::string> TaggedValueInText(std::string_view text,
                                             std::string_view tag) {
  std::optional<std::string> found;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    size_t i = 0;
    // Models often bold or bullet their final line: "**Diagnosis:** x".
    while (i < line.size() &&
           (std::isspace(static_cast<unsigned char>(line[i])) ||
            line[i] == '*' || line[i] == '-' || line[i] == '#')) {
      ++i;
    }
    if (line.size() - i > tag.size()) {
      bool same = true;
      for (size_t k = 0; k < tag.size() && same; ++k) {
        same = std::tolower(static_cast<unsigned char>(line[i + k])) ==
               std::tolower(static_cast<unsigned char>(tag[k]));
      }
      size_t j = i + tag.size();
      while (same && j < line.size() && line[j] == '*') ++j;
      if (same && j < line.size() && line[j] == ':') {
        ++j;
        while (j < line.size() && line[j] == '*') ++j;
        found = Trim(line.substr(j));
      }
    }
    if (end == text.size()) break;
    pos = end + 1;
  }
  return found;
}

std::optional<std::string> LastTaggedValue(const Trajectory& trajectory,
                                           std::string_view tag) {
  for (auto it = trajectory.turns.rbegin(); it != trajectory.turns.rend();
       ++it) {
    if (!IsPolicyTurn(*it)) continue;
    auto value = TaggedValueInText(it->content, tag);
    if (value) return value;
  }
  return std::nullopt;
}

const nlohmann::json* FindPath(const nlohmann::json& root,
                               std::string_view dotted) {
  const nlohmann::json* node = &root;
  size_t pos = 0;
  while (pos <= dotted.size()) {
    size_t dot = dotted.find('.', pos);
    if (dot == std::string_view::npos) dot = dotted.size();
    const std::string key(dotted.substr(pos, dot - pos));
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end() || it->is_null()) return nullptr;
    node = &*it;
    if (dot == dotted.size()) break;
    pos = dot + 1;
  }
  return node;
}

std::optional<std::string> ExtractAnswer(const Trajectory& trajectory,
                                         const nlohmann::json& params,
                                         std::string_view tag,
                                         bool whole_turn_fallback) {
  const wire::Fields fields(params, "params");
  if (fields.Has("answer_field")) {
    const std::string field = fields.String("answer_field");
    const nlohmann::json* value = FindPath(trajectory.info, field);
    if (value == nullptr) return std::nullopt;
    if (value->is_string()) return value->get<std::string>();
    if (value->is_number()) return value->dump();
    throw BadRequest(fmt::format(
        "trajectory.info.{}: expected a string or number answer, got {}", field,
        value->type_name()));
  }
  auto tagged = LastTaggedValue(trajectory, tag);
  if (tagged) return tagged;
  if (whole_turn_fallback) {
    const Turn* last = LastPolicyTurn(trajectory);
    if (last != nullptr) return Trim(last->content);
  }
  return std::nullopt;
}

std::string NormaliseAnswer(std::string_view text) {
  std::string spaced;
  spaced.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\'') continue;  // "patient's" -> "patients"
    spaced.push_back(std::isalnum(u) || u >= 0x80
                         ? static_cast<char>(std::tolower(u))
                         : ' ');
  }
  std::istringstream words(spaced);
  std::string word;
  std::string out;
  while (words >> word) {
    if (word == "a" || word == "an" || word == "the") continue;
    if (!out.empty()) out.push_back(' ');
    out += word;
  }
  return out;
}

}  // namespace clinrl::rewards
