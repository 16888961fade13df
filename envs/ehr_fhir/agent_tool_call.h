// The EHR agent's actions as tool calls (env option action_mode "tools",
// docs/envs/ehr_fhir.md, "Tool calls"): the tools fhir_get, fhir_post and
// finish, declared as OpenAI function schemas (envs/tool_calls.h).
// A call is mapped onto the AgentAction the text grammar (agent_action.h)
// gives for the same request, so GET, POST and FINISH run on one path
// (EhrSession::Run and the env's FINISH) whatever the mode, and a reply
// reads the same in both modes. The EHR envs (ehr_fhir, ehr_workflow) share
// this file, as they share the grammar and the session.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "envs/ehr_fhir/agent_action.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::ehr {

// The values of the env option action_mode.
inline constexpr const char* kTextActions = "text";
inline constexpr const char* kToolActions = "tools";

// What replaces kAgentActionFormat in the prompt and the spec's
// action_format in tools mode: the tools themselves reach the model through
// the chat template, so this only says how to use them.
inline constexpr const char* kAgentToolInstruction =
    "Act by calling the tools, exactly one tool call per reply: fhir_get "
    "{url} reads or searches (a FHIR URL under the API base), fhir_post "
    "{url, payload} creates the resource in payload (a JSON object), finish "
    "{answer} ends the task with the answers as a JSON list ([] when there "
    "is nothing to report).";

// The three tools, OpenAI function schemas (the EnvSpec's tools).
const nlohmann::json& AgentTools();

// One reply in tools mode: exactly one tool call, checked against
// AgentTools(), as the AgentAction the text grammar gives for the same
// request (POST's body is the payload's JSON). Anything else (no call,
// several, a malformed block, an unknown tool, a missing or mistyped
// argument, an empty url) is kInvalid with `error` saying what was wrong.
AgentAction ParseAgentToolCall(const std::string& text);

// ParseAgentToolCall in tools mode, ParseAgentAction in text mode.
AgentAction ParseAgentReply(const std::string& text, bool tools);

// The role of the env's reply to an action: "tool" in tools mode (the
// answer to the call), "user" in text mode (MedAgentBench's).
const char* AgentReplyRole(bool tools);

// A text action (as the grammar writes it) as the tool call that asks the
// same. Text that is not a well-formed GET, POST with a JSON object body or
// FINISH is returned unchanged, so a scripted malformed action stays
// malformed (and invalid) in tools mode.
std::string AgentActionAsToolCall(const std::string& text_action);

// Wraps a scripted policy that writes the text grammar: in an episode whose
// reset info.action_mode is "tools", each action it writes is sent as
// AgentActionAsToolCall of it. The replies it reads are the same text in
// both modes (only their role differs).
std::unique_ptr<ScriptedPolicy> WithToolCalls(
    std::unique_ptr<ScriptedPolicy> policy);

}  // namespace clinrl::envs::ehr
