// Config schema by visitation: every config struct lists its fields once in a
// `template <class V> void Visit(V& v)` method, and the visitors below read it
// from JSON (with full-path errors and unknown-key rejection) and write it
// back. Defaults are the struct's member initialisers.
//
//   struct TrainerConfig {
//     double lr = 1e-5;
//     std::string loss_agg = "token_mean";
//     template <class V> void Visit(V& v) {
//       v("lr", lr, "peak learning rate");
//       v.Enum("loss_agg", loss_agg, {"token_mean", "seq_mean_token_mean"});
//     }
//   };
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace clinrl::config {

using nlohmann::json;

// `--set a.b.c=value` overrides, by full dotted key path, as raw text: the
// schema decides how the text is parsed (so `--set run.name=42` is a string).
using Overrides = std::map<std::string, std::string>;

template <class T, class = void>
struct IsSection : std::false_type {};
class Reader;
template <class T>
struct IsSection<
    T, std::void_t<decltype(std::declval<T&>().Visit(std::declval<Reader&>()))>>
    : std::true_type {};

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

template <class T>
struct IsStringMap : std::false_type {};
template <class T>
struct IsStringMap<std::map<std::string, T>> : std::true_type {};

// The JSON type name a field expects, for error messages.
template <class T>
std::string TypeName() {
  if constexpr (std::is_same_v<T, bool>) {
    return "boolean";
  } else if constexpr (std::is_integral_v<T>) {
    return "integer";
  } else if constexpr (std::is_floating_point_v<T>) {
    return "number";
  } else if constexpr (std::is_same_v<T, std::string>) {
    return "string";
  } else if constexpr (std::is_same_v<T, json>) {
    return "any JSON value";
  } else if constexpr (IsVector<T>::value) {
    return "array of " + TypeName<typename T::value_type>();
  } else if constexpr (IsStringMap<T>::value) {
    return "object of " + TypeName<typename T::mapped_type>();
  } else {
    return "object";
  }
}

std::string JoinPath(const std::string& parent, const std::string& key);
std::string DescribeJson(const json& value);
// Closest known key by edit distance, or "" when nothing is close.
std::string ClosestKey(const std::string& key,
                       const std::vector<std::string>& known);

// Converts one JSON scalar to T or throws a ConfigError naming `path`.
template <class T>
T ScalarFromJson(const json& value, const std::string& path) {
  auto fail = [&]() -> ConfigError {
    return ConfigError(fmt::format("{}: expected {}, got {}", path,
                                   TypeName<T>(), DescribeJson(value)));
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) throw fail();
    return value.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (value.is_number_integer()) return value.get<T>();
    if (value.is_number_float()) {
      const double d = value.get<double>();
      if (d == static_cast<double>(static_cast<int64_t>(d))) {
        return static_cast<T>(d);
      }
    }
    throw fail();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!value.is_number()) throw fail();
    return value.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!value.is_string()) throw fail();
    return value.get<std::string>();
  } else {
    static_assert(std::is_same_v<T, json>, "unsupported scalar type");
    return value;
  }
}

// Parses the text of a --set override for a field of type T: strings are
// taken verbatim, everything else is parsed as JSON.
template <class T>
json OverrideToJson(const std::string& raw, const std::string& path) {
  if constexpr (std::is_same_v<T, std::string>) {
    return json(raw);
  } else {
    json parsed = json::parse(raw, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      if constexpr (std::is_same_v<T, json>) return json(raw);
      throw ConfigError(fmt::format("--set {}: expected {}, got '{}'", path,
                                    TypeName<T>(), raw));
    }
    return parsed;
  }
}

// Reads a section from JSON. Every key in the JSON object must be visited,
// every override under `path` must be consumed (see ResolveConfig).
class Reader {
 public:
  Reader(const json* node, std::string path, Overrides* overrides,
         std::set<std::string>* consumed)
      : node_(node),
        path_(std::move(path)),
        overrides_(overrides),
        consumed_(consumed) {
    if (node_ && !node_->is_null() && !node_->is_object()) {
      throw ConfigError(fmt::format("{}: expected object, got {}",
                                    path_.empty() ? "<config>" : path_,
                                    DescribeJson(*node_)));
    }
  }

  template <class T>
  void operator()(const char* key, T& value, const char* /*doc*/ = "") {
    known_.push_back(key);
    const std::string path = JoinPath(path_, key);
    const json* child = Child(key);
    Read(child, path, value);
  }

  // A string field limited to `allowed` values.
  void Enum(const char* key, std::string& value,
            std::initializer_list<const char*> allowed, const char* doc = "") {
    (*this)(key, value, doc);
    for (const char* a : allowed) {
      if (value == a) return;
    }
    std::string list;
    for (const char* a : allowed)
      list += (list.empty() ? "" : ", ") + std::string(a);
    throw ConfigError(fmt::format("{}: got '{}', expected one of: {}",
                                  JoinPath(path_, key), value, list));
  }

  // A numeric field with an inclusive lower bound.
  template <class T>
  void AtLeast(const char* key, T& value, T min, const char* doc = "") {
    (*this)(key, value, doc);
    if (value < min) {
      throw ConfigError(fmt::format("{}: got {}, expected a value >= {}",
                                    JoinPath(path_, key), value, min));
    }
  }

  // Throws for keys present in the JSON object that no field claimed.
  void RejectUnknownKeys() const;

  const std::string& path() const { return path_; }

 private:
  const json* Child(const char* key) const {
    if (!node_ || !node_->is_object()) return nullptr;
    auto it = node_->find(key);
    return it == node_->end() ? nullptr : &*it;
  }

  // Returns the override text for `path` (and marks it consumed), if any.
  const std::string* TakeOverride(const std::string& path) {
    auto it = overrides_->find(path);
    if (it == overrides_->end()) return nullptr;
    consumed_->insert(path);
    return &it->second;
  }

  template <class T>
  void Read(const json* child, const std::string& path, T& value) {
    if constexpr (IsSection<T>::value) {
      Reader sub(child, path, overrides_, consumed_);
      value.Visit(sub);
      sub.RejectUnknownKeys();
    } else if constexpr (std::is_same_v<T, json>) {
      if (child) value = *child;
      ApplyJsonOverrides(path, value);
    } else if constexpr (IsVector<T>::value || IsStringMap<T>::value) {
      json source = child ? *child : json();
      if (const std::string* raw = TakeOverride(path)) {
        source = OverrideToJson<T>(*raw, path);
      }
      if (source.is_null()) {
        // Element overrides (a.b.0.c) still apply to the default contents.
        if (!HasOverrideUnder(path)) return;
        source = Write(value);
      }
      ReadContainer(source, path, value);
    } else {
      if (const std::string* raw = TakeOverride(path)) {
        value = ScalarFromJson<T>(OverrideToJson<T>(*raw, path), path);
      } else if (child) {
        value = ScalarFromJson<T>(*child, path);
      }
    }
  }

  template <class T>
  static json Write(const T& value);

  template <class T>
  void ReadContainer(const json& source, const std::string& path, T& value) {
    if constexpr (IsVector<T>::value) {
      if (!source.is_array()) {
        throw ConfigError(fmt::format("{}: expected {}, got {}", path,
                                      TypeName<T>(), DescribeJson(source)));
      }
      T out(source.size());
      for (size_t i = 0; i < source.size(); ++i) {
        Read(&source[i], JoinPath(path, std::to_string(i)), out[i]);
      }
      value = std::move(out);
    } else {
      if (!source.is_object()) {
        throw ConfigError(fmt::format("{}: expected {}, got {}", path,
                                      TypeName<T>(), DescribeJson(source)));
      }
      T out;
      for (auto it = source.begin(); it != source.end(); ++it) {
        Read(&it.value(), JoinPath(path, it.key()), out[it.key()]);
      }
      value = std::move(out);
    }
  }

  bool HasOverrideUnder(const std::string& path) const;
  void ApplyJsonOverrides(const std::string& path, json& value);

  const json* node_;
  std::string path_;
  Overrides* overrides_;
  std::set<std::string>* consumed_;
  std::vector<std::string> known_;
};

// Writes a section back to JSON (the resolved config).
class Writer {
 public:
  explicit Writer(json* out) : out_(out) { *out_ = json::object(); }

  template <class T>
  void operator()(const char* key, const T& value, const char* /*doc*/ = "") {
    (*out_)[key] = ToJson(value);
  }
  void Enum(const char* key, const std::string& value,
            std::initializer_list<const char*>, const char* doc = "") {
    (*this)(key, value, doc);
  }
  template <class T>
  void AtLeast(const char* key, const T& value, T, const char* doc = "") {
    (*this)(key, value, doc);
  }

  template <class T>
  static json ToJson(const T& value) {
    if constexpr (IsSection<T>::value) {
      json out;
      Writer w(&out);
      const_cast<T&>(value).Visit(w);
      return out;
    } else if constexpr (IsVector<T>::value) {
      json out = json::array();
      for (const auto& v : value) out.push_back(ToJson(v));
      return out;
    } else if constexpr (IsStringMap<T>::value) {
      json out = json::object();
      for (const auto& [k, v] : value) out[k] = ToJson(v);
      return out;
    } else {
      return json(value);
    }
  }

 private:
  json* out_;
};

template <class T>
json Reader::Write(const T& value) {
  return Writer::ToJson(value);
}

// Reads `T` from `doc` with `overrides` applied on top (file < --set), and
// rejects unknown keys in either. The result starts from T's defaults.
template <class T>
T ReadConfig(const json& doc, const Overrides& overrides) {
  Overrides pending = overrides;
  std::set<std::string> consumed;
  T value;
  Reader reader(&doc, "", &pending, &consumed);
  value.Visit(reader);
  reader.RejectUnknownKeys();
  for (const auto& [path, raw] : pending) {
    if (!consumed.count(path)) {
      throw ConfigError(fmt::format(
          "--set {}={}: unknown key path (see `clinrl config show` for the "
          "known keys)",
          path, raw));
    }
  }
  return value;
}

template <class T>
json WriteConfig(const T& value) {
  return Writer::ToJson(value);
}

}  // namespace clinrl::config
