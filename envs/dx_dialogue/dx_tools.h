// dx_dialogue's tool-call mode (action_mode: tools): the five tools that
// stand for the text grammar's verbs (dx_action.h) and the mapping between a
// call and a DxAction, both ways. The env turns a call into the DxAction the
// text grammar would have produced and runs the same handling, so the two
// modes cannot drift apart; the scripted policies keep choosing text actions
// and convert them at the end, so their choices (and random streams) are the
// same in both modes.
//
//   ask             {question: string}
//   examine         {system: one of the knowledge base's exam systems}
//   order_test      {test: string}
//   set_disposition {disposition: home | clinic | emergency}
//   diagnose        {condition: string}, or in a ranked episode
//                   {differential: [string, ...]} (most likely first)
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "envs/dx_dialogue/dx_action.h"
#include "envs/dx_dialogue/knowledge_base.h"
#include "envs/tool_calls.h"

namespace clinrl::envs::dx {

// The system prompt's instruction in tools mode, in place of the grammar.
extern const char kDxToolsInstruction[];

// The tools of an episode (OpenAI function schemas).
nlohmann::json DxTools(const KnowledgeBase& kb, bool ranked,
                       int64_t max_differential);

// The action a model's reply asks for: exactly one tool call that passes
// CheckToolCall against `tools`. Otherwise kInvalid, with *error saying what
// was wrong (for the observation).
DxAction DxActionFromToolCalls(const std::string& text,
                               const nlohmann::json& tools, std::string* error);

// The tool call standing for a text action (ParseAction's grammar); a
// DIAGNOSIS in a ranked episode becomes a differential array. Throws
// InternalError for text that does not parse (scripted policies only).
ToolCall ToolCallOfTextAction(const std::string& text, bool ranked);

// What a scripted policy sends: `text` as is, or as a tool call when the
// episode's reset info said action_mode "tools".
std::string ScriptedActionFor(const std::string& text, bool tools, bool ranked);

}  // namespace clinrl::envs::dx
