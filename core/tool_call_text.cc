#include "core/tool_call_text.h"

#include <fmt/format.h>

#include <string_view>

namespace clinrl {

using nlohmann::json;

namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";
// Llama 3.1 writes it before a call for its built-in code interpreter and
// sometimes before a JSON call too; it is not part of the call.
constexpr std::string_view kPythonTag = "<|python_tag|>";

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the
// model needs the part after it.
std::string ParseErrorText(const std::exception& error) {
  std::string what = error.what();
  const auto bracket = what.find("] ");
  if (what.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) {
    return what.substr(bracket + 2);
  }
  return what;
}

// `value` (the call's field `key`) as the arguments object, or the reason it
// is not one. OpenAI's API carries arguments as a JSON string holding the
// object, and models trained on its transcripts write them so too.
std::string ReadArguments(json value, const char* key, json& arguments) {
  if (value.is_string()) {
    try {
      value = json::parse(value.get<std::string>());
    } catch (const json::exception& error) {
      return fmt::format("\"{}\" is a string that is not valid JSON ({})", key,
                         ParseErrorText(error));
    }
  }
  if (!value.is_object()) {
    return fmt::format("\"{}\": expected a JSON object, got {}", key,
                       value.type_name());
  }
  arguments = std::move(value);
  return "";
}

// One block's JSON as a call, or the reason it is not one.
std::string CallFromBlock(std::string_view body, ToolCall& call) {
  json parsed;
  try {
    parsed = json::parse(body);
  } catch (const json::exception& error) {
    return "invalid JSON (" + ParseErrorText(error) + ")";
  }
  if (!parsed.is_object()) {
    return fmt::format(
        "expected a JSON object {{\"name\": ..., \"arguments\": {{...}}}}, "
        "got {}",
        parsed.type_name());
  }
  if (!parsed.contains("name") || !parsed["name"].is_string()) {
    return "missing \"name\" (the tool's name as a string)";
  }
  call.name = parsed["name"].get<std::string>();
  if (!parsed.contains("arguments") || parsed["arguments"].is_null()) {
    call.arguments = json::object();
    return "";
  }
  return ReadArguments(parsed["arguments"], "arguments", call.arguments);
}

ParsedToolCalls ParseBlocks(const std::string& text) {
  ParsedToolCalls parsed;
  size_t position = 0;
  for (int block = 1;; ++block) {
    const size_t open = text.find(kOpen, position);
    if (open == std::string::npos) break;
    const size_t body_start = open + kOpen.size();
    const size_t close = text.find(kClose, body_start);
    if (close == std::string::npos) {
      parsed.error = fmt::format(
          "tool call {}: <tool_call> without a closing </tool_call>", block);
      break;
    }
    ToolCall call;
    const std::string error = CallFromBlock(
        Trim(std::string_view(text).substr(body_start, close - body_start)),
        call);
    if (!error.empty()) {
      parsed.error = fmt::format("tool call {}: {}", block, error);
      break;
    }
    parsed.calls.push_back(std::move(call));
    position = close + kClose.size();
  }
  return parsed;
}

// The Llama JSON call, when the whole text is one. Text that is not a JSON
// object with a string "name" and "parameters" or "arguments" is no call at
// all (a plain reply, or a JSON answer of another shape), so that only what
// is unmistakably a call attempt can be a malformed one.
ParsedToolCalls ParseLlamaCall(std::string_view text) {
  ParsedToolCalls parsed;
  text = Trim(text);
  if (text.substr(0, kPythonTag.size()) == kPythonTag) {
    text = Trim(text.substr(kPythonTag.size()));
  }
  if (text.empty() || text.front() != '{') return parsed;
  const json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object() || !object.contains("name") ||
      !object["name"].is_string()) {
    return parsed;
  }
  const bool has_parameters = object.contains("parameters");
  const bool has_arguments = object.contains("arguments");
  if (!has_parameters && !has_arguments) return parsed;
  if (has_parameters && has_arguments) {
    parsed.error =
        "tool call 1: both \"parameters\" and \"arguments\"; expected one of "
        "them";
    return parsed;
  }
  const char* key = has_parameters ? "parameters" : "arguments";
  ToolCall call;
  call.name = object["name"].get<std::string>();
  const std::string error = ReadArguments(object[key], key, call.arguments);
  if (!error.empty()) {
    parsed.error = "tool call 1: " + error;
    return parsed;
  }
  parsed.calls.push_back(std::move(call));
  return parsed;
}

// Python's json.dumps(value, ensure_ascii=False): ", " and ": " separators.
// Strings, integers, booleans and null print the same in nlohmann.
void DumpPythonJson(const json& value, std::string& out) {
  if (value.is_object()) {
    out += "{";
    bool first = true;
    for (const auto& [key, item] : value.items()) {
      if (!first) out += ", ";
      first = false;
      out += json(key).dump(-1, ' ', false) + ": ";
      DumpPythonJson(item, out);
    }
    out += "}";
  } else if (value.is_array()) {
    out += "[";
    for (size_t i = 0; i < value.size(); ++i) {
      if (i > 0) out += ", ";
      DumpPythonJson(value[i], out);
    }
    out += "]";
  } else {
    out += value.dump(-1, ' ', false);
  }
}

}  // namespace

ParsedToolCalls ParseToolCalls(const std::string& text) {
  // A text with a <tool_call> block is read in Qwen's format only, so a
  // block's error is never masked by a reading of the text as Llama's.
  if (text.find(kOpen) != std::string::npos) return ParseBlocks(text);
  return ParseLlamaCall(text);
}

std::string FormatToolCall(const ToolCall& call) {
  std::string out = "<tool_call>\n{\"name\": ";
  out += json(call.name).dump(-1, ' ', false);
  out += ", \"arguments\": ";
  DumpPythonJson(call.arguments, out);
  out += "}\n</tool_call>";
  return out;
}

}  // namespace clinrl
