#include "policy/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace clinrl::policy::jinja {
namespace {

// Python's float repr: the shortest digits that round-trip, positional for
// exponents -5..15 and scientific ("1e-05", "1e+16") outside them.
std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value,
                              std::chars_format::scientific);
  std::string scientific(buffer, result.ptr);
  size_t e = scientific.find('e');
  std::string mantissa = scientific.substr(0, e);
  int exponent = std::stoi(scientific.substr(e + 1));
  bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string text;
  if (exponent < -4 || exponent >= 16) {
    text = digits.substr(0, 1);
    if (digits.size() > 1) text += "." + digits.substr(1);
    char exponent_text[16];
    std::snprintf(exponent_text, sizeof(exponent_text), "e%c%02d",
                  exponent < 0 ? '-' : '+', std::abs(exponent));
    text += exponent_text;
  } else if (exponent < 0) {
    text = "0." + std::string(-exponent - 1, '0') + digits;
  } else {
    if (static_cast<int>(digits.size()) <= exponent + 1) {
      digits += std::string(exponent + 1 - digits.size(), '0');
      text = digits + ".0";
    } else {
      text = digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
  }
  return negative ? "-" + text : text;
}

std::string PythonStringRepr(const std::string& text) {
  bool has_single = text.find('\'') != std::string::npos;
  bool has_double = text.find('"') != std::string::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + quote;
}

void DumpJson(const Json& data, std::optional<int> indent, int depth,
              std::string& out) {
  std::string newline;
  if (indent) newline = "\n" + std::string(*indent * (depth + 1), ' ');
  std::string closing_newline;
  if (indent) closing_newline = "\n" + std::string(*indent * depth, ' ');
  const char* item_separator = indent ? "," : ", ";
  if (data.is_object()) {
    if (data.empty()) {
      out += "{}";
      return;
    }
    out += "{";
    bool first = true;
    for (const auto& [key, item] : data.items()) {
      if (!first) out += item_separator;
      first = false;
      out += newline + Json(key).dump(-1, ' ', false) + ": ";
      DumpJson(item, indent, depth + 1, out);
    }
    out += closing_newline + "}";
  } else if (data.is_array()) {
    if (data.empty()) {
      out += "[]";
      return;
    }
    out += "[";
    for (size_t i = 0; i < data.size(); ++i) {
      if (i > 0) out += item_separator;
      out += newline;
      DumpJson(data[i], indent, depth + 1, out);
    }
    out += closing_newline + "]";
  } else if (data.is_number_float()) {
    out += PythonFloatRepr(data.get<double>());
  } else {
    // Strings: nlohmann escapes exactly what json.dumps(ensure_ascii=False)
    // escapes (", \, control characters as \n or \u00XX); null/true/false
    // and integers print the same in both.
    out += data.dump(-1, ' ', false);
  }
}

}  // namespace

Value Value::Undefined(std::string name) {
  Value value;
  value.name = std::move(name);
  return value;
}

Value Value::Data(Json data) {
  Value value;
  value.kind = Kind::kData;
  value.data = std::move(data);
  return value;
}

Value Value::Callable(std::string name) {
  Value value;
  value.kind = Kind::kCallable;
  value.name = std::move(name);
  return value;
}

bool Truthy(const Value& value) {
  switch (value.kind) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kNamespace:
    case Value::Kind::kCallable:
      return true;
    case Value::Kind::kData:
      break;
  }
  const Json& data = value.data;
  if (data.is_null()) return false;
  if (data.is_boolean()) return data.get<bool>();
  if (data.is_number_float()) return data.get<double>() != 0.0;
  if (data.is_number()) return data.get<int64_t>() != 0;
  // nlohmann's empty() is false for every string, so strings are checked
  // by their text.
  if (data.is_string()) return !data.get_ref<const std::string&>().empty();
  if (data.is_array() || data.is_object()) return !data.empty();
  return true;
}

std::string PythonStr(const Json& data) {
  if (data.is_string()) return data.get<std::string>();
  return PythonRepr(data);
}

std::string PythonStr(const Value& value) {
  switch (value.kind) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNamespace:
      return "<Namespace " + PythonRepr(*value.attributes) + ">";
    case Value::Kind::kCallable:
      return "<function " + value.name + ">";
    case Value::Kind::kData:
      break;
  }
  return PythonStr(value.data);
}

std::string PythonRepr(const Json& data) {
  if (data.is_null()) return "None";
  if (data.is_boolean()) return data.get<bool>() ? "True" : "False";
  if (data.is_number_float()) return PythonFloatRepr(data.get<double>());
  if (data.is_number()) return data.dump();
  if (data.is_string()) return PythonStringRepr(data.get<std::string>());
  std::string out;
  if (data.is_array()) {
    out = "[";
    for (size_t i = 0; i < data.size(); ++i) {
      if (i > 0) out += ", ";
      out += PythonRepr(data[i]);
    }
    return out + "]";
  }
  out = "{";
  bool first = true;
  for (const auto& [key, item] : data.items()) {
    if (!first) out += ", ";
    first = false;
    out += PythonStringRepr(key) + ": " + PythonRepr(item);
  }
  return out + "}";
}

std::string PythonJsonDumps(const Json& data, std::optional<int> indent) {
  std::string out;
  DumpJson(data, indent, 0, out);
  return out;
}

bool PythonEquals(const Value& left, const Value& right) {
  if (left.is_undefined() || right.is_undefined()) {
    return left.is_undefined() && right.is_undefined();
  }
  if (left.kind == Value::Kind::kNamespace ||
      right.kind == Value::Kind::kNamespace) {
    return left.attributes == right.attributes;
  }
  if (!left.is_data() || !right.is_data()) return false;
  const Json& a = left.data;
  const Json& b = right.data;
  // Python's True == 1; nlohmann keeps booleans apart from numbers.
  auto as_number = [](const Json& x) {
    return x.is_boolean() ? Json(x.get<bool>() ? 1 : 0) : x;
  };
  if ((a.is_boolean() && b.is_number()) || (a.is_number() && b.is_boolean())) {
    return as_number(a) == as_number(b);
  }
  return a == b;
}

}  // namespace clinrl::policy::jinja
