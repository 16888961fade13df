// dx_dialogue's tool-call mode (envs/dx_dialogue/dx_tools.h): the spec's
// tools, calls mapped onto the text grammar's handling, errors back to the
// model as a tool message, and the scripted policies playing through tools
// exactly as they play through text.
#include "envs/dx_dialogue/dx_tools.h"

#include <gtest/gtest.h>

#include "envs/dx_dialogue/dx_dialogue_env.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"
#include "envs/tool_calls.h"

namespace clinrl::envs::dx {
namespace {

std::vector<std::string> ToolNames(const json& tools) {
  std::vector<std::string> names;
  for (const json& tool : tools) names.push_back(tool["function"]["name"]);
  return names;
}

TEST(DxToolsTest, SpecDeclaresToolsOnlyInToolsMode) {
  auto text = EnvRegistry::Global().Create("dx_dialogue");
  EXPECT_EQ(text->Spec().tools, json::array());
  EXPECT_EQ(text->Spec().action_format, std::string(kDxActionFormat));
  auto tools =
      EnvRegistry::Global().Create("dx_dialogue", {{"action_mode", "tools"}});
  const EnvSpec spec = tools->Spec();
  EXPECT_EQ(ToolNames(spec.tools),
            (std::vector<std::string>{"ask", "examine", "order_test",
                                      "set_disposition", "diagnose"}));
  EXPECT_EQ(ValidateToolSchemas(spec.tools), "");
  EXPECT_EQ(spec.action_format, std::string(kDxToolsInstruction));
  const json& exam = spec.tools[1]["function"]["parameters"];
  EXPECT_TRUE(exam["properties"]["system"]["enum"].size() >= 5);
  auto ranked = EnvRegistry::Global().Create("dx_dialogue",
                                             {{"action_mode", "tools"},
                                              {"diagnosis_format", "ranked"},
                                              {"max_differential", 3}});
  const json diagnose = ranked->Spec().tools[4]["function"]["parameters"];
  EXPECT_EQ(diagnose["required"], json::array({"differential"}));
  EXPECT_EQ(diagnose["properties"]["differential"]["maxItems"], 3);
}

struct Played {
  json final_info;
  std::vector<std::string> actions;
  std::vector<std::string> reply_roles;
};

Played Play(Env& env, const std::string& policy_name, int64_t index,
            const json& options) {
  auto policy = ScriptedPolicyRegistry::Global().Create(
      "dx_dialogue", policy_name, static_cast<uint64_t>(index), json::object());
  ResetRequest request;
  request.split = "test";
  request.task_index = index;
  request.options = options;
  const ResetResult reset = env.Reset(request);
  Observation transcript = reset.observation;
  json info = reset.info;
  info.erase("answer");
  info.erase("reward_spec");
  Played played;
  for (int turn = 0; turn < 64; ++turn) {
    const std::string action = policy->Act(transcript, info);
    played.actions.push_back(action);
    transcript.push_back({"assistant", action});
    const StepResult step = env.Step(action);
    for (const auto& m : step.observation) {
      played.reply_roles.push_back(m.role);
      transcript.push_back(m);
    }
    info = step.info;
    if (step.terminated || step.truncated) break;
    info.erase("answer");
    info.erase("reward_spec");
  }
  played.final_info = info;
  return played;
}

TEST(DxToolsTest, ScriptedPoliciesPlayThroughToolsAsThroughText) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  for (const char* policy : {"oracle", "random"}) {
    for (int64_t index = 0; index < 30; ++index) {
      const Played text = Play(*env, policy, index, json::object());
      const Played tools =
          Play(*env, policy, index, {{"action_mode", "tools"}});
      ASSERT_EQ(tools.actions.size(), text.actions.size()) << policy << index;
      for (size_t i = 0; i < tools.actions.size(); ++i) {
        // The same choice, as the tool call standing for the text action.
        EXPECT_EQ(tools.actions[i],
                  FormatToolCall(ToolCallOfTextAction(text.actions[i], false)));
      }
      for (const auto& role : tools.reply_roles) EXPECT_EQ(role, "tool");
      for (const auto& role : text.reply_roles) EXPECT_EQ(role, "user");
      EXPECT_EQ(tools.final_info["metrics"], text.final_info["metrics"])
          << policy << " task " << index;
      EXPECT_EQ(tools.final_info["metrics"]["invalid_actions"], 0);
    }
  }
}

TEST(DxToolsTest, RankedDifferentialThroughToolsGivesTheSameRank) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  const json ranked = {{"diagnosis_format", "ranked"}};
  json ranked_tools = ranked;
  ranked_tools["action_mode"] = "tools";
  for (int64_t index = 0; index < 20; ++index) {
    const Played text = Play(*env, "oracle", index, ranked);
    const Played tools = Play(*env, "oracle", index, ranked_tools);
    EXPECT_NE(tools.actions.back().find("\"differential\": ["),
              std::string::npos)
        << tools.actions.back();
    EXPECT_EQ(tools.final_info["metrics"], text.final_info["metrics"]);
    EXPECT_EQ(tools.final_info["differential"],
              text.final_info["differential"]);
  }
}

TEST(DxToolsTest, BadCallsAreInvalidActionsThatSayWhy) {
  auto env =
      EnvRegistry::Global().Create("dx_dialogue", {{"action_mode", "tools"}});
  ResetRequest request;
  request.split = "test";
  const ResetResult reset = env->Reset(request);
  EXPECT_EQ(reset.info["action_mode"], "tools");
  EXPECT_EQ(reset.info["tools"], env->Spec().tools);
  EXPECT_NE(reset.observation[0].content.find(kDxToolsInstruction),
            std::string::npos);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ASK: chest pain",
       "Invalid tool call: expected exactly one <tool_call> per turn, got 0."},
      {FormatToolCall({"ask", {{"question", "fever"}}}) +
           FormatToolCall({"ask", {{"question", "cough"}}}),
       "got 2"},
      {FormatToolCall({"order", {{"test", "ecg"}}}),
       "unknown tool 'order'; tools: ask, examine, order_test, "
       "set_disposition, diagnose"},
      {FormatToolCall({"ask", json::object()}),
       "tool 'ask': missing required argument 'question'"},
      {FormatToolCall({"examine", {{"system", "liver"}}}),
       "tool 'examine': argument 'system' got \"liver\", expected one of"},
      {FormatToolCall({"order_test", {{"test", 12}}}),
       "argument 'test' must be of type string"},
      {"<tool_call>{\"name\": \"ask\", \"arguments\": {\"question\": }}"
       "</tool_call>",
       "tool call 1: invalid JSON"},
      {FormatToolCall({"ask", {{"question", "  "}}}),
       "tool 'ask': the argument is empty"},
  };
  int64_t invalid = 0;
  for (const auto& [action, expected] : cases) {
    const StepResult step = env->Step(action);
    ++invalid;
    ASSERT_EQ(step.observation.size(), 1u);
    EXPECT_EQ(step.observation[0].role, "tool");
    EXPECT_NE(step.observation[0].content.find(expected), std::string::npos)
        << step.observation[0].content;
    EXPECT_EQ(step.info["invalid_actions"], invalid);
    EXPECT_EQ(step.info["action"]["type"], "invalid");
    if (step.truncated) break;
  }
}

TEST(DxToolsTest, TheRewardSpecReadsTheDispositionAndCallSyntax) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  ResetRequest request;
  request.split = "test";
  request.options = {{"action_mode", "tools"}};
  const json spec = env->Reset(request).info["reward_spec"];
  for (const json& component : spec["components"]) {
    if (component["name"] == "safety") {
      EXPECT_EQ(component["params"]["answer_field"], "disposition");
    }
    if (component["name"] == "format") {
      EXPECT_EQ(component["params"], json({{"grammar", "tool_call"}}));
    }
  }
  request.options = json::object();
  const json text_spec = env->Reset(request).info["reward_spec"];
  EXPECT_EQ(text_spec["components"][3]["params"],
            json({{"grammar", "dx_dialogue"}}));
}

}  // namespace
}  // namespace clinrl::envs::dx
