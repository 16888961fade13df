// What a chat template computes with: JSON data (the messages, tools and
// literals), Jinja's Undefined, `namespace()` objects and callables; and
// the Python behaviour templates depend on when they print, compare and
// serialise those values. Templates were written against Python, so
// `{{ true }}` prints "True", a list prints as ['a', 'b'], 7 / 2 is 3.5 and
// `tojson` is transformers' json.dumps(ensure_ascii=False) with Python's
// separators and float repr. Data is nlohmann::ordered_json because
// json.dumps keeps the key order of the caller's dicts.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace clinrl::policy::jinja {

using Json = nlohmann::ordered_json;
struct Statement;

struct Value {
  enum class Kind {
    kUndefined,  // a missing variable, key or attribute; `name` says which
    kData,
    kNamespace,  // attributes live in `attributes`, shared by every copy so
                 // `set ns.x` inside a loop is seen after it
    kCallable,   // a global function (`name`) or a macro (`macro`)
  };
  Kind kind = Kind::kUndefined;
  Json data;
  std::shared_ptr<Json> attributes;
  std::string name;
  std::shared_ptr<const Statement> macro;

  static Value Undefined(std::string name);
  static Value Data(Json data);
  static Value Callable(std::string name);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_data() const { return kind == Kind::kData; }
  bool is_string() const { return is_data() && data.is_string(); }
};

// Python's bool(value); Undefined is false.
bool Truthy(const Value& value);
// Python's str(value); Undefined is "".
std::string PythonStr(const Value& value);
std::string PythonStr(const Json& data);
// Python's repr() of JSON data (strings quoted, None, True, {'k': v}).
std::string PythonRepr(const Json& data);
// json.dumps(data, ensure_ascii=False, indent=indent) with Python's default
// separators: ", " and ": " without indent, "," and ": " with one.
std::string PythonJsonDumps(const Json& data, std::optional<int> indent);
// Python ==, with 1 == 1.0 and Undefined equal only to Undefined.
bool PythonEquals(const Value& left, const Value& right);

}  // namespace clinrl::policy::jinja
