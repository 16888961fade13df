// Tool calls as a model writes them in text: the one reader (and writer) of
// that text, so the env that runs a call, the `format` reward that gives it
// credit and the EHR grader that grades it agree on what a call is. It sits
// in core/ because envs/, rewards/ and the EHR grading library (which may
// use core/ only) all need it (docs/design.md, "The layering rule").
//
// Two formats are read:
//   - Qwen's (Hermes) blocks, any number of them in the text:
//       <tool_call>
//       {"name": "ask", "arguments": {"question": "..."}}
//       </tool_call>
//   - Llama 3.1/3.2's JSON call, when the text holds no <tool_call> block:
//     the whole trimmed text (after an optional leading <|python_tag|>) is
//     one object {"name": "ask", "parameters": {...}} ("arguments" is taken
//     too), as the Llama chat templates ask the model to answer.
// The rules are strict: a call is a JSON object with a string "name" and
// arguments that are a JSON object (or a JSON string holding one, as
// OpenAI's API spells them); anything else in a block is an error that names
// the block and what was wrong. Errors are returned as text, not thrown: an
// env sends them back to the model as an observation (docs/envs.md, "Tool
// calls"), never ends the episode on them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl {

struct ToolCall {
  std::string name;
  nlohmann::json arguments = nlohmann::json::object();
};

struct ParsedToolCalls {
  std::vector<ToolCall> calls;
  std::string error;  // empty when every call parsed
};

// Every <tool_call> block of `text`, in order; text outside the blocks is
// ignored. A malformed block (no closing tag, invalid JSON, not an object,
// no string "name", arguments neither an object nor a string holding one)
// stops the parse with `error` saying which block and what was wrong.
// Without any block: the Llama JSON call when the whole text is one (a JSON
// object with a string "name" and "parameters" or "arguments"; arguments
// that are not an object are an error), and otherwise no call and no error.
ParsedToolCalls ParseToolCalls(const std::string& text);

// One call as Qwen2.5's chat template renders an assistant's tool call:
// "<tool_call>\n{\"name\": \"ask\", \"arguments\": {...}}\n</tool_call>",
// arguments written as Python's json.dumps (", " and ": " separators,
// non-ASCII kept), so a scripted policy's text is what a model trained on
// that template would emit.
std::string FormatToolCall(const ToolCall& call);

}  // namespace clinrl
