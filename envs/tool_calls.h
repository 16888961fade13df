// Tool calls in the Qwen family's (Hermes) format: an env declares its tools
// as OpenAI function schemas in EnvSpec.tools, the chat template shows them
// to the model, and the model answers with
//   <tool_call>
//   {"name": "ask", "arguments": {"question": "..."}}
//   </tool_call>
// This file parses such text, checks a call against the declared tools and
// writes a call the way Qwen2.5's chat template renders one, so a scripted
// policy's text is what a model trained on that template would emit. Errors
// are returned as text, not thrown: they go back to the model as an
// observation (docs/envs.md, "Tool calls"), never end the episode.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::envs {

struct ToolCall {
  std::string name;
  nlohmann::json arguments = nlohmann::json::object();
};

struct ParsedToolCalls {
  std::vector<ToolCall> calls;
  std::string error;  // empty when every block parsed
};

// Every <tool_call>{"name": ..., "arguments": {...}}</tool_call> in `text`
// (arguments may also be a JSON string holding an object, as OpenAI-style
// models write them). A malformed block (no closing tag, invalid JSON, not an
// object, no string "name", arguments not an object) gives `error` saying
// which block and what was wrong; text outside the blocks is ignored.
ParsedToolCalls ParseToolCalls(const std::string& text);

// Checks a call against the declared tools (OpenAI function schemas:
// {"type":"function","function":{"name","description","parameters"}}):
// unknown name (listing the known ones), missing required argument, an
// argument not declared, wrong JSON type of a declared argument, a value
// outside a declared enum. Returns "" or the error text.
std::string CheckToolCall(const ToolCall& call, const nlohmann::json& tools);

// The text a scripted policy emits for one call:
// "<tool_call>\n{\"name\": \"ask\", \"arguments\": {...}}\n</tool_call>",
// arguments written as Python's json.dumps (", " and ": " separators,
// non-ASCII kept), as Qwen2.5's template renders an assistant tool call.
std::string FormatToolCall(const ToolCall& call);

// One OpenAI function schema with an object of parameters; `properties` is
// an object of JSON Schemas and `required` names some of them. Saves each
// env from spelling out the wrapper.
nlohmann::json FunctionTool(const std::string& name,
                            const std::string& description,
                            const nlohmann::json& properties,
                            const std::vector<std::string>& required);

// Structural check that `tools` is an array of valid OpenAI function
// schemas: type "function", a non-empty unique name, parameters an object
// schema (type "object", properties of schemas with a known JSON Schema
// "type", required a subset of the properties). Returns "" or an error
// naming the path ("tools[1].function.parameters.required[0]: ...").
std::string ValidateToolSchemas(const nlohmann::json& tools);

}  // namespace clinrl::envs
