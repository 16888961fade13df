#include "policy/jinja_builtins.h"

#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "core/error.h"

namespace clinrl::policy::jinja {
namespace {

const char* kWhitespace = " \t\n\r\f\v";

std::string TypeName(const Value& value) {
  if (value.is_undefined()) return "Undefined";
  if (value.kind == Value::Kind::kNamespace) return "Namespace";
  if (value.kind == Value::Kind::kCallable) return "function";
  const Json& data = value.data;
  if (data.is_null()) return "NoneType";
  if (data.is_boolean()) return "bool";
  if (data.is_number_float()) return "float";
  if (data.is_number()) return "int";
  if (data.is_string()) return "str";
  if (data.is_array()) return "list";
  return "dict";
}

[[noreturn]] void ThrowUndefined(const Value& value, const std::string& where) {
  throw BadRequest(where +
                   (value.name.empty() ? "value is undefined" : value.name));
}

const Value& Argument(const CallArguments& arguments, size_t index,
                      const std::string& keyword, const Value& fallback) {
  for (const auto& [name, value] : arguments.keyword) {
    if (name == keyword) return value;
  }
  if (index < arguments.positional.size()) return arguments.positional[index];
  return fallback;
}

std::string StringArgument(const CallArguments& arguments, size_t index,
                           const std::string& keyword,
                           const std::string& fallback,
                           const std::string& where) {
  static const Value kAbsent;
  const Value& value = Argument(arguments, index, keyword, kAbsent);
  if (value.is_undefined()) return fallback;
  if (value.is_data() && value.data.is_null()) return fallback;
  if (!value.is_string()) {
    throw BadRequest(where + "argument '" + keyword +
                     "' must be a string, got " + TypeName(value));
  }
  return value.data.get<std::string>();
}

std::string StripChars(const std::string& text, const std::string& chars,
                       bool left, bool right) {
  size_t begin = 0;
  size_t end = text.size();
  if (left) {
    while (begin < end && chars.find(text[begin]) != std::string::npos) ++begin;
  }
  if (right) {
    while (end > begin && chars.find(text[end - 1]) != std::string::npos) --end;
  }
  return text.substr(begin, end - begin);
}

// Python's str.upper()/lower() map every Unicode letter ("ünï" -> "ÜNÏ",
// "ß" -> "SS"); ICU's full case mapping does the same.
std::string MapCase(const std::string& text, bool upper) {
  icu::UnicodeString unicode = icu::UnicodeString::fromUTF8(text);
  if (upper) {
    unicode.toUpper(icu::Locale::getRoot());
  } else {
    unicode.toLower(icu::Locale::getRoot());
  }
  std::string out;
  unicode.toUTF8String(out);
  return out;
}

std::vector<std::string> Utf8CharactersOf(const std::string& text);

std::string Capitalize(const std::string& text) {
  std::vector<std::string> characters = Utf8CharactersOf(text);
  if (characters.empty()) return text;
  return MapCase(characters[0], true) +
         MapCase(text.substr(characters[0].size()), false);
}

std::vector<std::string> Split(const std::string& text, const std::string& sep,
                               int64_t max_split) {
  std::vector<std::string> parts;
  if (sep.empty()) {
    // Python's split(): runs of whitespace, no empty parts.
    size_t position = text.find_first_not_of(kWhitespace);
    while (position != std::string::npos) {
      size_t end = text.find_first_of(kWhitespace, position);
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        end = std::string::npos;
        parts.push_back(
            StripChars(text.substr(position), kWhitespace, false, true));
        break;
      }
      parts.push_back(text.substr(position, end - position));
      position = end == std::string::npos
                     ? end
                     : text.find_first_not_of(kWhitespace, end);
    }
    return parts;
  }
  size_t position = 0;
  while (true) {
    size_t found = text.find(sep, position);
    if (found == std::string::npos ||
        (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split)) {
      parts.push_back(text.substr(position));
      return parts;
    }
    parts.push_back(text.substr(position, found - position));
    position = found + sep.size();
  }
}

std::string Replace(const std::string& text, const std::string& old_text,
                    const std::string& new_text, int64_t count) {
  if (old_text.empty()) return text;
  std::string out;
  size_t position = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t found = text.find(old_text, position);
    if (found == std::string::npos) break;
    out += text.substr(position, found - position) + new_text;
    position = found + old_text.size();
    ++done;
  }
  return out + text.substr(position);
}

const std::string& RequireString(const Value& value, const std::string& what,
                                 const std::string& where) {
  if (!value.is_string()) {
    if (value.is_undefined()) ThrowUndefined(value, where);
    throw BadRequest(where + what + " expects a string, got " +
                     TypeName(value));
  }
  return value.data.get_ref<const std::string&>();
}

int64_t Length(const Value& value, const std::string& where) {
  if (value.is_undefined()) return 0;
  if (value.is_string()) {
    return static_cast<int64_t>(
        Utf8Characters(value.data.get<std::string>()).size());
  }
  if (value.is_data() && (value.data.is_array() || value.data.is_object())) {
    return static_cast<int64_t>(value.data.size());
  }
  throw BadRequest(where + "object of type '" + TypeName(value) +
                   "' has no len()");
}

// Python's list(value) for the filters that walk a sequence.
std::vector<Json> Elements(const Value& value, const std::string& where) {
  return Iterate(value, where);
}

bool StartsWithAny(const std::string& text, const Value& prefixes, bool at_end,
                   const std::string& where) {
  std::vector<std::string> candidates;
  if (prefixes.is_data() && prefixes.data.is_array()) {
    for (const Json& prefix : prefixes.data) {
      candidates.push_back(
          RequireString(Value::Data(prefix), "startswith", where));
    }
  } else {
    candidates.push_back(RequireString(prefixes, "startswith", where));
  }
  for (const std::string& candidate : candidates) {
    if (candidate.size() > text.size()) continue;
    size_t offset = at_end ? text.size() - candidate.size() : 0;
    if (text.compare(offset, candidate.size(), candidate) == 0) return true;
  }
  return false;
}

Value StringMethod(const std::string& text, const std::string& name,
                   const CallArguments& arguments, const std::string& where) {
  static const Value kAbsent;
  if (name == "startswith" || name == "endswith") {
    return Value::Data(StartsWithAny(text,
                                     Argument(arguments, 0, "prefix", kAbsent),
                                     name == "endswith", where));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    std::string chars =
        StringArgument(arguments, 0, "chars", kWhitespace, where);
    return Value::Data(
        StripChars(text, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split") {
    std::string sep = StringArgument(arguments, 0, "sep", "", where);
    const Value& max_split =
        Argument(arguments, 1, "maxsplit", Value::Data(-1));
    return Value::Data(Split(text, sep, max_split.data.get<int64_t>()));
  }
  if (name == "upper") return Value::Data(MapCase(text, true));
  if (name == "lower") return Value::Data(MapCase(text, false));
  if (name == "capitalize") return Value::Data(Capitalize(text));
  if (name == "replace") {
    const Value& count = Argument(arguments, 2, "count", Value::Data(-1));
    return Value::Data(Replace(text,
                               StringArgument(arguments, 0, "old", "", where),
                               StringArgument(arguments, 1, "new", "", where),
                               count.data.get<int64_t>()));
  }
  if (name == "find") {
    size_t found = text.find(StringArgument(arguments, 0, "sub", "", where));
    return Value::Data(
        found == std::string::npos ? int64_t{-1} : static_cast<int64_t>(found));
  }
  if (name == "join") {
    std::string joined;
    std::vector<Json> items =
        Elements(Argument(arguments, 0, "iterable", kAbsent), where);
    for (size_t i = 0; i < items.size(); ++i) {
      joined += (i > 0 ? text : "") + PythonStr(items[i]);
    }
    return Value::Data(joined);
  }
  throw BadRequest(where + "unsupported string method '" + name +
                   "' (supported: startswith, endswith, strip, lstrip, rstrip, "
                   "split, upper, lower, capitalize, replace, find, join)");
}

Value DictMethod(const Json& dict, const std::string& name,
                 const CallArguments& arguments, const std::string& where) {
  if (name == "items") {
    Json pairs = Json::array();
    for (const auto& [key, item] : dict.items())
      pairs.push_back(Json::array({key, item}));
    return Value::Data(pairs);
  }
  if (name == "keys" || name == "values") {
    Json list = Json::array();
    for (const auto& [key, item] : dict.items()) {
      list.push_back(name == "keys" ? Json(key) : item);
    }
    return Value::Data(list);
  }
  if (name == "get") {
    std::string key = StringArgument(arguments, 0, "key", "", where);
    auto found = dict.find(key);
    if (found != dict.end()) return Value::Data(*found);
    return Argument(arguments, 1, "default", Value::Data(nullptr));
  }
  throw BadRequest(where + "unsupported dict method '" + name +
                   "' (supported: items, keys, values, get)");
}

// Jinja's select/reject/selectattr/rejectattr: keep the items whose test
// (truthiness without one) is `keep`.
Value SelectItems(const Value& subject, const CallArguments& arguments,
                  bool by_attribute, bool keep, const std::string& where) {
  size_t test_index = by_attribute ? 1 : 0;
  std::string attribute;
  if (by_attribute)
    attribute = StringArgument(arguments, 0, "attribute", "", where);
  std::string test;
  if (arguments.positional.size() > test_index) {
    test = RequireString(arguments.positional[test_index], "select test name",
                         where);
  }
  CallArguments test_arguments;
  for (size_t i = test_index + 1; i < arguments.positional.size(); ++i) {
    test_arguments.positional.push_back(arguments.positional[i]);
  }
  Json kept = Json::array();
  for (const Json& item : Elements(subject, where)) {
    Value candidate = Value::Data(item);
    if (by_attribute) candidate = GetAttribute(candidate, attribute, where);
    bool passes = test.empty()
                      ? Truthy(candidate)
                      : ApplyTest(test, candidate, test_arguments, where);
    if (passes == keep) kept.push_back(item);
  }
  return Value::Data(kept);
}

Value MapItems(const Value& subject, const CallArguments& arguments,
               const std::string& where) {
  Json mapped = Json::array();
  std::string attribute = StringArgument(arguments, 99, "attribute", "", where);
  CallArguments filter_arguments;
  std::string filter;
  if (attribute.empty()) {
    if (arguments.positional.empty()) {
      throw BadRequest(where + "map needs a filter name or attribute=");
    }
    filter = RequireString(arguments.positional[0], "map filter name", where);
    filter_arguments.positional.assign(arguments.positional.begin() + 1,
                                       arguments.positional.end());
  }
  for (const Json& item : Elements(subject, where)) {
    Value value =
        attribute.empty()
            ? ApplyFilter(filter, Value::Data(item), filter_arguments, where)
            : GetAttribute(Value::Data(item), attribute, where);
    if (value.is_undefined()) {
      static const Value kAbsent;
      value = Argument(arguments, 99, "default", kAbsent);
    }
    mapped.push_back(ToData(value, where));
  }
  return Value::Data(mapped);
}

Value StringFilter(const std::string& name, const Value& subject,
                   const CallArguments& arguments, const std::string& where) {
  std::string text = PythonStr(subject);
  if (name == "trim") {
    std::string chars =
        StringArgument(arguments, 0, "chars", kWhitespace, where);
    return Value::Data(StripChars(text, chars, true, true));
  }
  if (name == "string") return Value::Data(text);
  if (name == "lower") return Value::Data(MapCase(text, false));
  if (name == "upper") return Value::Data(MapCase(text, true));
  if (name == "capitalize") return Value::Data(Capitalize(text));
  const Value& count = Argument(arguments, 2, "count", Value::Data(-1));
  return Value::Data(Replace(text,
                             StringArgument(arguments, 0, "old", "", where),
                             StringArgument(arguments, 1, "new", "", where),
                             count.data.get<int64_t>()));
}

Value ToJsonFilter(const Value& subject, const CallArguments& arguments,
                   const std::string& where) {
  if (!subject.is_data()) {
    if (subject.is_undefined()) ThrowUndefined(subject, where);
    throw BadRequest(where + "tojson cannot serialise a " + TypeName(subject));
  }
  static const Value kAbsent;
  const Value& indent = Argument(arguments, 99, "indent", kAbsent);
  std::optional<int> indent_width;
  if (indent.is_data() && indent.data.is_number_integer()) {
    indent_width = indent.data.get<int>();
  }
  const Value& indent_positional = Argument(arguments, 0, "", kAbsent);
  if (indent_positional.is_data() &&
      indent_positional.data.is_number_integer()) {
    indent_width = indent_positional.data.get<int>();
  }
  return Value::Data(PythonJsonDumps(subject.data, indent_width));
}

Value SequenceFilter(const std::string& name, const Value& subject,
                     const std::string& where) {
  if (name == "items") {
    if (subject.is_undefined()) return Value::Data(Json::array());
    if (!subject.is_data() || !subject.data.is_object()) {
      throw BadRequest(where + "items expects a dict, got " +
                       TypeName(subject));
    }
    return DictMethod(subject.data, "items", {}, where);
  }
  if (name == "list") return Value::Data(Json(Elements(subject, where)));
  if (name == "reverse") {
    if (subject.is_string()) {
      std::vector<std::string> characters =
          Utf8Characters(subject.data.get<std::string>());
      std::string reversed;
      for (auto it = characters.rbegin(); it != characters.rend(); ++it)
        reversed += *it;
      return Value::Data(reversed);
    }
    std::vector<Json> items = Elements(subject, where);
    return Value::Data(Json(std::vector<Json>(items.rbegin(), items.rend())));
  }
  std::vector<Json> items = Elements(subject, where);
  if (items.empty()) return Value::Undefined("first/last of an empty sequence");
  return Value::Data(name == "first" ? items.front() : items.back());
}

std::vector<std::string> Utf8CharactersOf(const std::string& text) {
  return Utf8Characters(text);
}

}  // namespace

std::vector<std::string> Utf8Characters(const std::string& text) {
  std::vector<std::string> characters;
  for (size_t i = 0; i < text.size();) {
    unsigned char lead = static_cast<unsigned char>(text[i]);
    size_t width = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    width = std::min(width, text.size() - i);
    characters.push_back(text.substr(i, width));
    i += width;
  }
  return characters;
}

Json ToData(const Value& value, const std::string& where) {
  if (value.is_undefined()) return nullptr;
  if (value.is_data()) return value.data;
  if (value.kind == Value::Kind::kNamespace) return *value.attributes;
  throw BadRequest(where + "a function cannot be stored in a list or dict");
}

std::vector<Json> Iterate(const Value& subject, const std::string& where) {
  if (subject.is_undefined()) return {};
  if (subject.is_data()) {
    const Json& data = subject.data;
    if (data.is_array()) return std::vector<Json>(data.begin(), data.end());
    if (data.is_object()) {
      std::vector<Json> keys;
      for (const auto& [key, item] : data.items()) keys.emplace_back(key);
      return keys;
    }
    if (data.is_string()) {
      std::vector<Json> characters;
      for (auto& character : Utf8Characters(data.get<std::string>())) {
        characters.emplace_back(character);
      }
      return characters;
    }
  }
  throw BadRequest(where + "'" + TypeName(subject) +
                   "' object is not iterable");
}

Value GetAttribute(const Value& subject, const std::string& name,
                   const std::string& where) {
  if (subject.is_undefined()) ThrowUndefined(subject, where);
  if (subject.kind == Value::Kind::kNamespace) {
    auto found = subject.attributes->find(name);
    if (found != subject.attributes->end()) return Value::Data(*found);
  } else if (subject.is_data() && subject.data.is_object()) {
    auto found = subject.data.find(name);
    if (found != subject.data.end()) return Value::Data(*found);
  }
  return Value::Undefined("'" + TypeName(subject) +
                          " object' has no attribute '" + name + "'");
}

Value GetItem(const Value& subject, const Value& key,
              const std::string& where) {
  if (subject.is_undefined()) ThrowUndefined(subject, where);
  if (key.is_string()) {
    return GetAttribute(subject, key.data.get<std::string>(), where);
  }
  if (subject.is_data() && key.is_data() && key.data.is_number_integer()) {
    int64_t index = key.data.get<int64_t>();
    if (subject.data.is_array() || subject.data.is_string()) {
      std::vector<Json> items = Iterate(subject, where);
      int64_t size = static_cast<int64_t>(items.size());
      if (index < 0) index += size;
      if (index >= 0 && index < size) return Value::Data(items[index]);
      return Value::Undefined(TypeName(subject) + " index out of range");
    }
  }
  return Value::Undefined("'" + TypeName(subject) + " object' has no item " +
                          PythonStr(key));
}

Value GetSlice(const Value& subject, const Value& start, const Value& stop,
               const Value& step, const std::string& where) {
  std::vector<Json> items = Iterate(subject, where);
  int64_t size = static_cast<int64_t>(items.size());
  auto part = [&](const Value& value, int64_t fallback) {
    if (value.is_undefined() || value.data.is_null()) return fallback;
    if (!value.data.is_number_integer()) {
      throw BadRequest(where + "slice indices must be integers, got " +
                       TypeName(value));
    }
    return value.data.get<int64_t>();
  };
  int64_t stride = part(step, 1);
  if (stride == 0) throw BadRequest(where + "slice step cannot be zero");
  // Python's slice.indices(): clamp into range, counting negatives from the
  // end.
  auto clamp = [&](int64_t index, int64_t low, int64_t high) {
    if (index < 0) index += size;
    return std::max(low, std::min(index, high));
  };
  int64_t first = stride > 0 ? clamp(part(start, 0), 0, size)
                             : clamp(part(start, size - 1), -1, size - 1);
  int64_t last = stride > 0 ? clamp(part(stop, size), 0, size)
                            : (stop.is_undefined() || stop.data.is_null()
                                   ? -1
                                   : clamp(part(stop, -1), -1, size - 1));
  Json sliced = Json::array();
  std::string text;
  for (int64_t i = first; stride > 0 ? i < last : i > last; i += stride) {
    if (subject.is_string()) {
      text += items[i].get<std::string>();
    } else {
      sliced.push_back(items[i]);
    }
  }
  return subject.is_string() ? Value::Data(text) : Value::Data(sliced);
}

Value CallMethod(const Value& subject, const std::string& name,
                 const CallArguments& arguments, const std::string& where) {
  if (subject.is_undefined()) ThrowUndefined(subject, where);
  if (subject.is_string()) {
    return StringMethod(subject.data.get<std::string>(), name, arguments,
                        where);
  }
  if (subject.is_data() && subject.data.is_object()) {
    return DictMethod(subject.data, name, arguments, where);
  }
  throw BadRequest(where + "'" + TypeName(subject) +
                   "' object has no method '" + name + "'");
}

Value ApplyFilter(const std::string& name, const Value& subject,
                  const CallArguments& arguments, const std::string& where) {
  static const Value kAbsent;
  if (name == "tojson") return ToJsonFilter(subject, arguments, where);
  if (name == "trim" || name == "string" || name == "lower" ||
      name == "upper" || name == "capitalize" || name == "replace") {
    return StringFilter(name, subject, arguments, where);
  }
  if (name == "length" || name == "count")
    return Value::Data(Length(subject, where));
  if (name == "items" || name == "list" || name == "first" || name == "last" ||
      name == "reverse") {
    return SequenceFilter(name, subject, where);
  }
  if (name == "join") {
    std::string separator = StringArgument(arguments, 0, "d", "", where);
    std::string attribute =
        StringArgument(arguments, 1, "attribute", "", where);
    std::string joined;
    bool first = true;
    for (const Json& item : Elements(subject, where)) {
      Value element = Value::Data(item);
      if (!attribute.empty()) element = GetAttribute(element, attribute, where);
      joined += (first ? "" : separator) + PythonStr(element);
      first = false;
    }
    return Value::Data(joined);
  }
  if (name == "default" || name == "d") {
    bool boolean =
        Truthy(Argument(arguments, 1, "boolean", Value::Data(false)));
    if (subject.is_undefined() || (boolean && !Truthy(subject))) {
      return Argument(arguments, 0, "default_value", Value::Data(""));
    }
    return subject;
  }
  if (name == "select" || name == "reject") {
    return SelectItems(subject, arguments, false, name == "select", where);
  }
  if (name == "selectattr" || name == "rejectattr") {
    return SelectItems(subject, arguments, true, name == "selectattr", where);
  }
  if (name == "map") return MapItems(subject, arguments, where);
  if (name == "safe") return subject;
  if (name == "int") {
    if (subject.is_data() && subject.data.is_number()) {
      return Value::Data(static_cast<int64_t>(subject.data.get<double>()));
    }
    try {
      return Value::Data(std::stoll(PythonStr(subject)));
    } catch (const std::exception&) {
      return Argument(arguments, 0, "default", Value::Data(0));
    }
  }
  throw BadRequest(
      where + "unsupported filter '" + name +
      "' (supported: tojson, trim, string, lower, upper, capitalize, "
      "replace, length, count, items, list, first, last, reverse, "
      "join, default, select, reject, selectattr, rejectattr, map, "
      "safe, int)");
}

bool ApplyTest(const std::string& name, const Value& subject,
               const CallArguments& arguments, const std::string& where) {
  static const Value kAbsent;
  const Json& data = subject.data;
  bool is_data = subject.is_data();
  if (name == "defined") return !subject.is_undefined();
  if (name == "undefined") return subject.is_undefined();
  if (name == "none") return is_data && data.is_null();
  if (name == "string") return subject.is_string();
  if (name == "mapping") return is_data && data.is_object();
  if (name == "iterable" || name == "sequence") {
    return is_data && (data.is_array() || data.is_object() || data.is_string());
  }
  if (name == "number") return is_data && data.is_number();
  if (name == "integer") return is_data && data.is_number_integer();
  if (name == "float") return is_data && data.is_number_float();
  if (name == "boolean") return is_data && data.is_boolean();
  if (name == "true") return is_data && data.is_boolean() && data.get<bool>();
  if (name == "false") return is_data && data.is_boolean() && !data.get<bool>();
  if (name == "callable") return subject.kind == Value::Kind::kCallable;
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") {
    return PythonEquals(subject, Argument(arguments, 0, "other", kAbsent));
  }
  if (name == "ne" || name == "!=") {
    return !PythonEquals(subject, Argument(arguments, 0, "other", kAbsent));
  }
  if (name == "odd" || name == "even" || name == "divisibleby") {
    if (!is_data || !data.is_number_integer()) {
      throw BadRequest(where + "test '" + name + "' expects an integer, got " +
                       TypeName(subject));
    }
    int64_t divisor =
        name == "divisibleby"
            ? Argument(arguments, 0, "num", Value::Data(1)).data.get<int64_t>()
            : 2;
    bool divisible = data.get<int64_t>() % divisor == 0;
    return name == "odd" ? !divisible : divisible;
  }
  if (name == "lower" || name == "upper") {
    if (!subject.is_string()) return false;
    const std::string& text = data.get_ref<const std::string&>();
    return text == MapCase(text, name == "upper");
  }
  throw BadRequest(where + "unsupported test '" + name +
                   "' (supported: defined, undefined, none, string, mapping, "
                   "iterable, sequence, number, integer, float, boolean, true, "
                   "false, callable, equalto, ne, odd, even, divisibleby, "
                   "lower, upper)");
}

}  // namespace clinrl::policy::jinja
