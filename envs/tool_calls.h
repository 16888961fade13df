// Tool calls for envs: an env declares its tools as OpenAI function schemas
// in EnvSpec.tools, the chat template shows them to the model, and the model
// answers with a call in Qwen's (Hermes) format
//   <tool_call>
//   {"name": "ask", "arguments": {"question": "..."}}
//   </tool_call>
// or, for a Llama-family model, with Llama 3.1/3.2's JSON call
// {"name": "ask", "parameters": {"question": "..."}} (optionally after
// <|python_tag|>). Reading and writing that text is core/tool_call_text.h,
// shared with the `format` reward and the EHR grader so that all three agree
// on what a call is; this file re-exports it for envs and adds what only an
// env needs: checking a call against the declared tools and building and
// validating the schemas. Errors are returned as text, not thrown: they go
// back to the model as an observation (docs/envs.md, "Tool calls"), never
// end the episode.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tool_call_text.h"

namespace clinrl::envs {

// The text format's reader and writer (core/tool_call_text.h), under the
// names envs have always used.
using clinrl::FormatToolCall;
using clinrl::ParsedToolCalls;
using clinrl::ParseToolCalls;
using clinrl::ToolCall;

// Checks a call against the declared tools (OpenAI function schemas:
// {"type":"function","function":{"name","description","parameters"}}):
// unknown name (listing the known ones), missing required argument, an
// argument not declared, wrong JSON type of a declared argument, a value
// outside a declared enum. Returns "" or the error text.
std::string CheckToolCall(const ToolCall& call, const nlohmann::json& tools);

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
