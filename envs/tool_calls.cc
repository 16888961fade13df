#include "envs/tool_calls.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace clinrl::envs {

using nlohmann::json;

namespace {

const json* FindTool(const json& tools, const std::string& name) {
  if (!tools.is_array()) return nullptr;
  for (const json& tool : tools) {
    if (tool.is_object() && tool.contains("function") &&
        tool["function"].is_object() &&
        tool["function"].value("name", "") == name) {
      return &tool["function"];
    }
  }
  return nullptr;
}

std::string ToolNames(const json& tools) {
  std::string names;
  if (!tools.is_array()) return names;
  for (const json& tool : tools) {
    if (!tool.is_object() || !tool.contains("function")) continue;
    if (!names.empty()) names += ", ";
    names += tool["function"].value("name", "");
  }
  return names;
}

bool HasType(const json& value, const std::string& type) {
  if (type == "string") return value.is_string();
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "null") return value.is_null();
  if (type == "number") return value.is_number();
  if (type == "integer") {
    // JSON Schema: a number with a zero fractional part is an integer.
    return value.is_number_integer() ||
           (value.is_number_float() &&
            value.get<double>() ==
                static_cast<double>(static_cast<int64_t>(value.get<double>())));
  }
  return true;  // a type the validator does not know constrains nothing here
}

// "" when `value` matches the property's declared type and enum.
std::string CheckArgument(const std::string& tool, const std::string& name,
                          const json& value, const json& schema) {
  if (!schema.is_object()) return "";
  if (schema.contains("type")) {
    const json& type = schema["type"];
    std::vector<std::string> types;
    if (type.is_string()) types.push_back(type.get<std::string>());
    if (type.is_array()) {
      for (const json& t : type) {
        if (t.is_string()) types.push_back(t.get<std::string>());
      }
    }
    const bool ok = types.empty() || std::any_of(types.begin(), types.end(),
                                                 [&](const std::string& t) {
                                                   return HasType(value, t);
                                                 });
    if (!ok) {
      return fmt::format(
          "tool '{}': argument '{}' must be of type {}, got {} ({})", tool,
          name, type.is_string() ? type.get<std::string>() : type.dump(),
          value.type_name(), value.dump());
    }
  }
  if (schema.contains("enum") && schema["enum"].is_array()) {
    const json& allowed = schema["enum"];
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      return fmt::format("tool '{}': argument '{}' got {}, expected one of {}",
                         tool, name, value.dump(), allowed.dump());
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string error = CheckArgument(
          tool, fmt::format("{}[{}]", name, i), value[i], schema["items"]);
      if (!error.empty()) return error;
    }
  }
  return "";
}

const std::set<std::string>& KnownTypes() {
  static const std::set<std::string> kTypes = {
      "string", "number", "integer", "boolean", "array", "object", "null"};
  return kTypes;
}

// "" when `schema` is an object schema whose "type" names known types.
std::string ValidatePropertySchema(const json& schema,
                                   const std::string& path) {
  if (!schema.is_object()) {
    return fmt::format("{}: expected a JSON Schema object, got {}", path,
                       schema.type_name());
  }
  if (!schema.contains("type")) {
    return fmt::format("{}.type: missing; expected one of {}", path,
                       fmt::join(KnownTypes(), ", "));
  }
  const json& type = schema["type"];
  const json types = type.is_array() ? type : json::array({type});
  for (const json& t : types) {
    if (!t.is_string() || !KnownTypes().count(t.get<std::string>())) {
      return fmt::format("{}.type: got {}, expected one of {}", path, t.dump(),
                         fmt::join(KnownTypes(), ", "));
    }
  }
  if (schema.contains("enum") &&
      (!schema["enum"].is_array() || schema["enum"].empty())) {
    return fmt::format("{}.enum: expected a non-empty array, got {}", path,
                       schema["enum"].dump());
  }
  if (schema.contains("description") && !schema["description"].is_string()) {
    return fmt::format("{}.description: expected a string, got {}", path,
                       schema["description"].type_name());
  }
  if (schema.contains("items")) {
    return ValidatePropertySchema(schema["items"], path + ".items");
  }
  if (schema.contains("properties")) {
    if (!schema["properties"].is_object()) {
      return fmt::format("{}.properties: expected an object, got {}", path,
                         schema["properties"].type_name());
    }
    for (const auto& [name, property] : schema["properties"].items()) {
      const std::string error = ValidatePropertySchema(
          property, fmt::format("{}.properties.{}", path, name));
      if (!error.empty()) return error;
    }
  }
  return "";
}

std::string ValidateParameters(const json& parameters,
                               const std::string& path) {
  if (!parameters.is_object() || parameters.value("type", json()) != "object") {
    return fmt::format(
        "{}: expected an object schema with \"type\": \"object\", got {}", path,
        parameters.dump());
  }
  const json properties = parameters.value("properties", json::object());
  if (!properties.is_object()) {
    return fmt::format("{}.properties: expected an object, got {}", path,
                       properties.type_name());
  }
  const std::string error = ValidatePropertySchema(parameters, path);
  if (!error.empty()) return error;
  if (!parameters.contains("required")) return "";
  const json& required = parameters["required"];
  if (!required.is_array()) {
    return fmt::format("{}.required: expected an array of names, got {}", path,
                       required.type_name());
  }
  for (size_t i = 0; i < required.size(); ++i) {
    if (!required[i].is_string() ||
        !properties.contains(required[i].get<std::string>())) {
      return fmt::format("{}.required[{}]: got {}, expected a property name",
                         path, i, required[i].dump());
    }
  }
  return "";
}

}  // namespace

std::string CheckToolCall(const ToolCall& call, const json& tools) {
  const json* function = FindTool(tools, call.name);
  if (function == nullptr) {
    return fmt::format("unknown tool '{}'; tools: {}", call.name,
                       ToolNames(tools));
  }
  const json parameters = function->value("parameters", json::object());
  const json properties = parameters.value("properties", json::object());
  for (const json& name : parameters.value("required", json::array())) {
    if (name.is_string() && !call.arguments.contains(name.get<std::string>())) {
      return fmt::format("tool '{}': missing required argument '{}'", call.name,
                         name.get<std::string>());
    }
  }
  for (const auto& [name, value] : call.arguments.items()) {
    if (!properties.contains(name)) {
      if (parameters.value("additionalProperties", true) == false) {
        std::vector<std::string> names;
        for (const auto& [declared, schema] : properties.items()) {
          names.push_back(declared);
        }
        return fmt::format("tool '{}': unknown argument '{}'; arguments: {}",
                           call.name, name, fmt::join(names, ", "));
      }
      continue;
    }
    const std::string error =
        CheckArgument(call.name, name, value, properties[name]);
    if (!error.empty()) return error;
  }
  return "";
}

json FunctionTool(const std::string& name, const std::string& description,
                  const json& properties,
                  const std::vector<std::string>& required) {
  return {{"type", "function"},
          {"function",
           {{"name", name},
            {"description", description},
            {"parameters",
             {{"type", "object"},
              {"properties", properties},
              {"required", required},
              {"additionalProperties", false}}}}}};
}

std::string ValidateToolSchemas(const json& tools) {
  if (!tools.is_array()) {
    return fmt::format("tools: expected an array of function schemas, got {}",
                       tools.type_name());
  }
  std::set<std::string> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string path = fmt::format("tools[{}]", i);
    const json& tool = tools[i];
    if (!tool.is_object() || tool.value("type", json()) != "function") {
      return fmt::format(
          "{}.type: expected \"function\", got {}", path,
          tool.is_object() ? tool.value("type", json()).dump() : tool.dump());
    }
    if (!tool.contains("function") || !tool["function"].is_object()) {
      return fmt::format("{}.function: expected an object", path);
    }
    const json& function = tool["function"];
    const json name = function.value("name", json());
    if (!name.is_string() || name.get<std::string>().empty()) {
      return fmt::format(
          "{}.function.name: expected a non-empty string, got {}", path,
          name.dump());
    }
    if (!names.insert(name.get<std::string>()).second) {
      return fmt::format("{}.function.name: '{}' is declared twice", path,
                         name.get<std::string>());
    }
    if (function.contains("description") &&
        !function["description"].is_string()) {
      return fmt::format("{}.function.description: expected a string", path);
    }
    const std::string error = ValidateParameters(
        function.value("parameters", json()), path + ".function.parameters");
    if (!error.empty()) return error;
  }
  return "";
}

}  // namespace clinrl::envs
