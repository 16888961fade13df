#include "envs/ehr_fhir/agent_tool_call.h"

#include <fmt/format.h>

#include <cctype>
#include <utility>

#include "envs/tool_calls.h"

namespace clinrl::envs::ehr {
namespace {

using nlohmann::json;

json BuildAgentTools() {
  const json url = {
      {"type", "string"},
      {"description",
       "a FHIR URL under the API base, e.g. "
       "http://localhost:8080/fhir/Observation?patient=S1234567&code=19123-9"}};
  return json::array(
      {FunctionTool("fhir_get",
                    "Read or search FHIR resources (an HTTP GET): a search "
                    "[base][type]?param=value&... or a read [base][type]/[id]. "
                    "Returns the server's JSON, or its error and status.",
                    {{"url", url}}, {"url"}),
       FunctionTool(
           "fhir_post",
           "Create a FHIR resource (an HTTP POST to [base][type]). Returns "
           "the created resource, or the server's error and status.",
           {{"url",
             {{"type", "string"},
              {"description",
               "the type's URL under the API base, e.g. "
               "http://localhost:8080/fhir/MedicationRequest"}}},
            {"payload",
             {{"type", "object"},
              {"description",
               "the resource as a JSON object, with resourceType, status, "
               "subject {\"reference\": \"Patient/[id]\"} and the type's "
               "required elements"}}}},
           {"url", "payload"}),
       FunctionTool(
           "finish",
           "End the task with the answer. Call it once, after any writes.",
           {{"answer",
             {{"type", "array"},
              {"description",
               "the answers as a JSON list (any JSON values, as FINISH "
               "takes), numbers and strings as the question asks, e.g. [1.7], "
               "[\"S1234567\"], [5.9, "
               "\"2023-05-02T08:00:00+00:00\"], [-1] for no value, [] when "
               "there is nothing to report"}}}},
           {"answer"})});
}

std::string Trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// The action a checked call asks for; the url check is the text grammar's
// (one non-empty URL on one line).
AgentAction ActionOfCall(const ToolCall& call) {
  AgentAction a;
  if (call.name == "finish") {
    a.kind = AgentAction::Kind::kFinish;
    a.answer = call.arguments.at("answer");
    return a;
  }
  a.url = Trim(call.arguments.at("url").get<std::string>());
  if (a.url.empty() || a.url.find('\n') != std::string::npos) {
    a.error = fmt::format(
        "tool '{}': argument 'url' must be one URL on one line, got \"{}\"",
        call.name, call.arguments.at("url").get<std::string>());
    return a;
  }
  if (call.name == "fhir_get") {
    a.kind = AgentAction::Kind::kGet;
    return a;
  }
  a.kind = AgentAction::Kind::kPost;
  a.body = call.arguments.at("payload").dump();
  return a;
}

// The observation reads "Invalid action: <error>."; errors from
// envs/tool_calls.h may already end in a period.
std::string WithoutFinalPeriod(std::string error) {
  while (!error.empty() && error.back() == '.') error.pop_back();
  return error;
}

class ToolCallPolicy : public ScriptedPolicy {
 public:
  explicit ToolCallPolicy(std::unique_ptr<ScriptedPolicy> text_policy)
      : text_policy_(std::move(text_policy)) {}

  std::string Act(const Observation& transcript, const json& info) override {
    // The first call gets the reset info, the only one that names the mode.
    if (!mode_read_) {
      mode_read_ = true;
      tools_ = info.is_object() &&
               info.value("action_mode", kTextActions) == kToolActions;
    }
    std::string action = text_policy_->Act(transcript, info);
    return tools_ ? AgentActionAsToolCall(action) : action;
  }

 private:
  std::unique_ptr<ScriptedPolicy> text_policy_;
  bool mode_read_ = false;
  bool tools_ = false;
};

}  // namespace

const json& AgentTools() {
  static const json tools = BuildAgentTools();
  return tools;
}

AgentAction ParseAgentToolCall(const std::string& text) {
  AgentAction a;
  const ParsedToolCalls parsed = ParseToolCalls(text);
  if (!parsed.error.empty()) {
    a.error = WithoutFinalPeriod(parsed.error);
    return a;
  }
  if (parsed.calls.size() != 1) {
    a.error = fmt::format(
        "expected exactly one tool call (fhir_get, fhir_post or finish) in "
        "<tool_call></tool_call> tags, got {}",
        parsed.calls.size());
    return a;
  }
  const std::string problem = CheckToolCall(parsed.calls[0], AgentTools());
  if (!problem.empty()) {
    a.error = WithoutFinalPeriod(problem);
    return a;
  }
  return ActionOfCall(parsed.calls[0]);
}

AgentAction ParseAgentReply(const std::string& text, bool tools) {
  return tools ? ParseAgentToolCall(text) : ParseAgentAction(text);
}

const char* AgentReplyRole(bool tools) { return tools ? "tool" : "user"; }

std::string AgentActionAsToolCall(const std::string& text_action) {
  const AgentAction a = ParseAgentAction(text_action);
  switch (a.kind) {
    case AgentAction::Kind::kGet:
      return FormatToolCall({"fhir_get", {{"url", a.url}}});
    case AgentAction::Kind::kPost: {
      json payload = json::parse(a.body, nullptr, /*allow_exceptions=*/false);
      if (!payload.is_object()) return text_action;
      return FormatToolCall(
          {"fhir_post", {{"url", a.url}, {"payload", std::move(payload)}}});
    }
    case AgentAction::Kind::kFinish:
      return FormatToolCall({"finish", {{"answer", a.answer}}});
    case AgentAction::Kind::kInvalid:
      break;
  }
  return text_action;
}

std::unique_ptr<ScriptedPolicy> WithToolCalls(
    std::unique_ptr<ScriptedPolicy> policy) {
  return std::make_unique<ToolCallPolicy>(std::move(policy));
}

}  // namespace clinrl::envs::ehr
