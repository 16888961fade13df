#include "core/config_schema.h"

#include <algorithm>

namespace clinrl::config {

std::string JoinPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

std::string DescribeJson(const json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return fmt::format("{} {}", value.type_name(), text);
}

namespace {
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string ClosestKey(const std::string& key,
                       const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;
  for (const auto& k : known) {
    const size_t d = EditDistance(key, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  return best;
}

void Reader::RejectUnknownKeys() const {
  if (node_ && node_->is_object()) {
    for (auto it = node_->begin(); it != node_->end(); ++it) {
      if (std::find(known_.begin(), known_.end(), it.key()) != known_.end()) {
        continue;
      }
      const std::string guess = ClosestKey(it.key(), known_);
      std::string known;
      for (const auto& k : known_) known += (known.empty() ? "" : ", ") + k;
      throw ConfigError(fmt::format(
          "{}: unknown key{}; known keys here: {}", JoinPath(path_, it.key()),
          guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess),
          known));
    }
  }
  // Overrides that name a key directly under this section must be known.
  const std::string prefix = path_.empty() ? "" : path_ + ".";
  for (const auto& [path, raw] : *overrides_) {
    if (consumed_->count(path) || path.compare(0, prefix.size(), prefix) != 0) {
      continue;
    }
    const std::string rest = path.substr(prefix.size());
    const std::string head = rest.substr(0, rest.find('.'));
    if (std::find(known_.begin(), known_.end(), head) == known_.end()) {
      const std::string guess = ClosestKey(head, known_);
      throw ConfigError(fmt::format(
          "--set {}: unknown key '{}'{}", path, JoinPath(path_, head),
          guess.empty()
              ? ""
              : fmt::format(" (did you mean '{}'?)", JoinPath(path_, guess))));
    }
  }
}

bool Reader::HasOverrideUnder(const std::string& path) const {
  const std::string prefix = path + ".";
  for (const auto& [p, raw] : *overrides_) {
    if (p.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

void Reader::ApplyJsonOverrides(const std::string& path, json& value) {
  if (const std::string* raw = TakeOverride(path)) {
    value = OverrideToJson<json>(*raw, path);
  }
  const std::string prefix = path + ".";
  for (const auto& [p, raw] : *overrides_) {
    if (p.compare(0, prefix.size(), prefix) != 0) continue;
    consumed_->insert(p);
    json* cursor = &value;
    std::string rest = p.substr(prefix.size());
    while (true) {
      const size_t dot = rest.find('.');
      const std::string key = rest.substr(0, dot);
      if (cursor->is_null()) *cursor = json::object();
      if (cursor->is_array()) {
        size_t index = 0;
        try {
          index = std::stoul(key);
        } catch (const std::exception&) {
          throw ConfigError(
              fmt::format("--set {}: '{}' is not an array index", p, key));
        }
        if (index >= cursor->size()) {
          throw ConfigError(fmt::format(
              "--set {}: index {} is past the end of an array of {}", p, index,
              cursor->size()));
        }
        cursor = &(*cursor)[index];
      } else if (cursor->is_object()) {
        cursor = &(*cursor)[key];
      } else {
        throw ConfigError(fmt::format("--set {}: cannot set '{}' inside a {}",
                                      p, key, cursor->type_name()));
      }
      if (dot == std::string::npos) break;
      rest = rest.substr(dot + 1);
    }
    *cursor = OverrideToJson<json>(raw, p);
  }
}

}  // namespace clinrl::config
