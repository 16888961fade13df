// A tools-mode env played through an OpenAI-compatible endpoint
// (rollout/endpoint_rollout.h): the request carries the env's tools, the
// reply's tool_calls reach the env as the <tool_call> text it parses, and
// the conversation sent back has OpenAI's shape (assistant tool_calls, then
// `tool` messages with their tool_call_id), which the fake endpoint checks
// as OpenAI's API does.
#include "rollout/endpoint_rollout.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "core/tool_call_text.h"
#include "envs/env_pool.h"
#include "envs/env_registry.h"
#include "envs/tool_calls.h"
#include "tests/rollout/fake_chat_endpoint.h"

namespace clinrl::rollout {
namespace {

using nlohmann::json;

// A task hides a word: the tool `look` shows it, `say` ends the episode,
// correct when it says the word. Malformed or unknown calls are invalid
// actions answered in a tool message, as the built-in tools-mode envs do.
class LookupWordEnv : public envs::Env {
 public:
  static json Tools() {
    return json::array(
        {envs::FunctionTool("look", "Shows the word.", json::object(), {}),
         envs::FunctionTool("say", "Says a word and ends the task.",
                            {{"word", {{"type", "string"}}}}, {"word"})});
  }
  envs::EnvSpec Spec() const override {
    envs::EnvSpec spec;
    spec.name = "lookup_word";
    spec.version = "1";
    spec.action_format = "Call look, then say the word.";
    spec.max_turns = 5;
    spec.splits = {{"test", 4}};
    spec.tools = Tools();
    return spec;
  }
  envs::ResetResult Reset(const envs::ResetRequest& request) override {
    const int64_t task = envs::TaskIndexOf(request, 4);
    word_ = "word" + std::to_string(task);
    turns_ = invalid_actions_ = 0;
    correct_ = false;
    return {{{"system", "Look the word up, then say it."},
             {"user", "Task " + std::to_string(task)}},
            Info()};
  }
  envs::StepResult Step(const std::string& action) override {
    ++turns_;
    envs::StepResult step;
    const envs::ParsedToolCalls parsed = envs::ParseToolCalls(action);
    std::string error = parsed.error;
    if (error.empty() && parsed.calls.size() != 1) {
      error = "expected exactly one tool call, got " +
              std::to_string(parsed.calls.size());
    }
    if (error.empty()) error = envs::CheckToolCall(parsed.calls[0], Tools());
    if (!error.empty()) {
      ++invalid_actions_;
      step.observation = {{"tool", "Invalid tool call: " + error}};
    } else if (parsed.calls[0].name == "look") {
      step.observation = {{"tool", "The word is " + word_}};
    } else {
      const std::string said = parsed.calls[0].arguments["word"];
      correct_ = said == word_;
      step.observation = {{"tool", "You said " + said}};
      step.terminated = true;
      step.reward = correct_ ? 1.0 : 0.0;
    }
    step.truncated = !step.terminated && turns_ >= 5;
    step.info = Info();
    return step;
  }
  envs::StepResult Truncate() override {
    envs::StepResult step;
    step.truncated = true;
    step.info = Info();
    return step;
  }

 private:
  json Info() const {
    return {{"invalid_actions", invalid_actions_},
            {"metrics", {{"correct", correct_ ? 1.0 : 0.0}}}};
  }
  std::string word_;
  int64_t turns_ = 0;
  int64_t invalid_actions_ = 0;
  bool correct_ = false;
};

CLINRL_REGISTER_ENV(lookup_word, [](const json&, const std::string&) {
  return std::make_unique<LookupWordEnv>();
});

// The oracle behind an OpenAI-style endpoint: `look`, then `say` the word
// the tool answered. On "Task 1" its first call has arguments that are not
// JSON. Requests without the env's tools are refused, as are (by the fake
// endpoint) messages OpenAI would refuse.
json LookupWordOracleReply(const json& body) {
  if (body.value("tools", json()) != LookupWordEnv::Tools()) {
    throw std::invalid_argument("tools: not the env's");
  }
  const json& messages = body["messages"];
  const json& last = messages.back();
  const std::string id = "call_" + std::to_string(messages.size());
  const std::string said = "The word is ";
  if (last["role"] == "tool" &&
      last["content"].get<std::string>().rfind(said, 0) == 0) {
    const std::string word =
        last["content"].get<std::string>().substr(said.size());
    return testing::ToolCallReply(id, "say", json({{"word", word}}).dump());
  }
  if (last["role"] == "user" && last["content"] == "Task 1") {
    return testing::ToolCallReply(id, "say", "{\"word\": ");
  }
  return testing::ToolCallReply(id, "look", "{}", "Looking.");
}

class EndpointToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    envs::EnvPoolOptions o;
    o.service.envs = {"lookup_word"};
    o.workers = 2;
    pool_ = std::make_unique<envs::EnvPool>(o);
  }

  std::vector<EndpointEpisode> Play() {
    EndpointRolloutOptions where;
    where.endpoint.url = endpoint_.url();
    where.endpoint.model = "fake";
    where.endpoint.max_retries = 0;
    where.env_endpoint = pool_->endpoint();
    where.concurrency = 2;
    where.env_tools = {{"lookup_word", LookupWordEnv::Tools()}};
    RolloutOptions options;
    options.group_size = 2;
    options.max_turns = 5;
    options.max_tokens_per_turn = 64;
    options.max_tokens_per_episode = 4096;
    return PlayEndpointEpisodes(where, options,
                                {{"lookup_word", "test", 0, {}},
                                 {"lookup_word", "test", 1, {}},
                                 {"lookup_word", "test", 3, {}}},
                                11);
  }

  testing::FakeChatEndpoint endpoint_{LookupWordOracleReply};
  std::unique_ptr<envs::EnvPool> pool_;
};

TEST_F(EndpointToolsTest, ToolCallsReachTheEnvAndTheOracleScoresAsIt) {
  const std::vector<EndpointEpisode> played = Play();
  ASSERT_EQ(played.size(), 6u);
  for (const EndpointEpisode& e : played) {
    const Trajectory& t = e.trajectory;
    // The oracle's accuracy: every episode found and said its word.
    EXPECT_EQ(t.termination, Termination::kFinished) << t.episode_id;
    EXPECT_EQ(t.info["metrics"]["correct"], 1.0) << t.info.dump();
    ASSERT_GE(t.turns.size(), 6u);
    const std::string word = "word" + std::to_string(t.task_index);
    // The env received the calls as the <tool_call> text it parses, the
    // reply's content kept before them.
    EXPECT_EQ(t.turns[t.turns.size() - 4].content,
              "Looking.\n" + FormatToolCall({"look", json::object()}));
    EXPECT_EQ(t.turns[t.turns.size() - 3].content, "The word is " + word);
    EXPECT_EQ(t.turns[t.turns.size() - 2].content,
              FormatToolCall({"say", {{"word", word}}}));
    EXPECT_EQ(t.turns.back().role, "tool");
  }
  // Every request carried the tools (the fake answers 400 otherwise), and a
  // later one shows the conversation in OpenAI's shape.
  bool saw_answer = false;
  for (const json& body : endpoint_.bodies()) {
    const json& messages = body["messages"];
    for (size_t i = 1; i < messages.size(); ++i) {
      if (messages[i]["role"] != "tool") continue;
      ASSERT_EQ(messages[i - 1]["role"], "assistant");
      EXPECT_EQ(messages[i]["tool_call_id"],
                messages[i - 1]["tool_calls"][0]["id"]);
      saw_answer = true;
    }
  }
  EXPECT_TRUE(saw_answer);
}

TEST_F(EndpointToolsTest, MalformedArgumentsAreAnInvalidActionNotACrash) {
  const std::vector<EndpointEpisode> played = Play();
  ASSERT_EQ(played.size(), 6u);
  for (const EndpointEpisode& e : played) {
    const Trajectory& t = e.trajectory;
    if (t.task_index != 1) {
      EXPECT_EQ(t.info["invalid_actions"], 0) << t.episode_id;
      continue;
    }
    // The env refused the call naming the arguments, the endpoint saw that
    // refusal as the call's result, and the episode went on to the word.
    EXPECT_EQ(t.info["invalid_actions"], 1) << t.info.dump();
    ASSERT_GE(t.turns.size(), 4u);
    EXPECT_EQ(t.turns[2].content,
              "<tool_call>\n{\"name\": \"say\", \"arguments\": "
              "\"{\\\"word\\\": \"}\n</tool_call>");
    EXPECT_EQ(t.turns[3].role, "tool");
    EXPECT_NE(t.turns[3].content.find(
                  "Invalid tool call: tool call 1: \"arguments\" is a string "
                  "that is not valid JSON"),
              std::string::npos)
        << t.turns[3].content;
    EXPECT_EQ(t.info["metrics"]["correct"], 1.0);
    EXPECT_EQ(t.termination, Termination::kFinished);
  }
}

}  // namespace
}  // namespace clinrl::rollout
