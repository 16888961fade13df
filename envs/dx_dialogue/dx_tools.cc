#include "envs/dx_dialogue/dx_tools.h"

#include <fmt/format.h>

#include "core/error.h"

namespace clinrl::envs::dx {

using nlohmann::json;

const char kDxToolsInstruction[] =
    "One tool call per turn: ask the patient, examine a system, order a test, "
    "set the disposition, and end with diagnose.";

json DxTools(const KnowledgeBase& kb, bool ranked, int64_t max_differential) {
  json systems = json::array();
  for (const ExamSystem& system : kb.systems) systems.push_back(system.name);
  const json string = {{"type", "string"}};
  json diagnose =
      ranked
          ? FunctionTool(
                "diagnose",
                fmt::format("Commit to a ranked differential diagnosis, most "
                            "likely first, at most {} conditions (names or "
                            "ICD-10 codes). Ends the consultation.",
                            max_differential),
                {{"differential",
                  {{"type", "array"},
                   {"items", string},
                   {"minItems", 1},
                   {"maxItems", max_differential}}}},
                {"differential"})
          : FunctionTool("diagnose",
                         "Commit to one diagnosis (a condition name or an "
                         "ICD-10 code). Ends the consultation.",
                         {{"condition", string}}, {"condition"});
  return json::array(
      {FunctionTool("ask",
                    "Ask the patient a question about symptoms or history.",
                    {{"question", string}}, {"question"}),
       FunctionTool("examine", "Examine one body system (has a price).",
                    {{"system", {{"type", "string"}, {"enum", systems}}}},
                    {"system"}),
       FunctionTool("order_test",
                    "Order one test by name, e.g. ecg, troponin, cbc (has a "
                    "price).",
                    {{"test", string}}, {"test"}),
       FunctionTool(
           "set_disposition", "Decide where the patient goes next.",
           {{"disposition",
             {{"type", "string"},
              {"enum", json::array({"home", "clinic", "emergency"})}}}},
           {"disposition"}),
       diagnose});
}

namespace {

// Arguments are names and short questions, cut as the text grammar cuts them
// so that matching stays cheap.
std::string Argument(const json& arguments, const char* key) {
  std::string value = arguments.at(key).get<std::string>();
  if (value.size() > kMaxArgumentChars) value.resize(kMaxArgumentChars);
  return value;
}

}  // namespace

DxAction DxActionFromToolCalls(const std::string& text, const json& tools,
                               std::string* error) {
  DxAction action;
  const ParsedToolCalls parsed = ParseToolCalls(text);
  if (!parsed.error.empty()) {
    *error = parsed.error;
  } else if (parsed.calls.size() != 1) {
    *error = fmt::format("expected exactly one <tool_call> per turn, got {}",
                         parsed.calls.size());
  } else {
    *error = CheckToolCall(parsed.calls[0], tools);
  }
  if (!error->empty()) return action;
  const ToolCall& call = parsed.calls[0];
  if (call.name == "ask") {
    action = {ActionType::kAsk, Argument(call.arguments, "question")};
  } else if (call.name == "examine") {
    action = {ActionType::kExam, Argument(call.arguments, "system")};
  } else if (call.name == "order_test") {
    action = {ActionType::kTest, Argument(call.arguments, "test")};
  } else if (call.name == "set_disposition") {
    action = {ActionType::kDisposition,
              Argument(call.arguments, "disposition")};
  } else if (call.arguments.contains("differential")) {
    // The text grammar's list, so the env reads both modes the same way.
    std::string listed;
    const json& items = call.arguments["differential"];
    for (size_t i = 0; i < items.size(); ++i) {
      listed += fmt::format("{}{}. {}", i ? "; " : "", i + 1,
                            items[i].get<std::string>());
    }
    action = {ActionType::kDiagnosis, listed};
  } else {
    action = {ActionType::kDiagnosis, Argument(call.arguments, "condition")};
  }
  size_t first = action.argument.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    *error = fmt::format("tool '{}': the argument is empty", call.name);
    return DxAction{};
  }
  return action;
}

ToolCall ToolCallOfTextAction(const std::string& text, bool ranked) {
  const DxAction action = ParseAction(text);
  switch (action.type) {
    case ActionType::kAsk:
      return {"ask", {{"question", action.argument}}};
    case ActionType::kExam:
      return {"examine", {{"system", action.argument}}};
    case ActionType::kTest:
      return {"order_test", {{"test", action.argument}}};
    case ActionType::kDisposition:
      return {"set_disposition", {{"disposition", action.argument}}};
    case ActionType::kDiagnosis:
      if (ranked) {
        return {"diagnose",
                {{"differential", SplitDifferential(action.argument)}}};
      }
      return {"diagnose", {{"condition", action.argument}}};
    case ActionType::kInvalid:
      break;
  }
  throw InternalError(fmt::format(
      "dx_dialogue tools mode: the scripted action \"{}\" is not in the text "
      "grammar (ASK/EXAM/TEST/DISPOSITION/DIAGNOSIS)",
      text));
}

std::string ScriptedActionFor(const std::string& text, bool tools,
                              bool ranked) {
  return tools ? FormatToolCall(ToolCallOfTextAction(text, ranked)) : text;
}

}  // namespace clinrl::envs::dx
