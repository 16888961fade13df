// `clinrl eval` as a user runs it: a run's final checkpoint, evaluated on
// the run's config, gives the run's own test figures; --samples adds pass@k.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/cli/background_process.h"
#include "tests/cli/run_clinrl.h"
#include "tests/rollout/fake_chat_endpoint.h"

namespace {

using clinrl::rollout::testing::FakeChatEndpoint;
using clinrl::rollout::testing::ToolCallReply;
using clinrl::testing::ExpectOneLineError;
using clinrl::testing::RunClinrl;
using clinrl::testing::TinyEchoConfig;
using nlohmann::json;

const std::string kOut = ::testing::TempDir() + "/cli_runs";

// A tiny SFT + GRPO run named `name` on the echo env with a checkpoint per
// step. Each test names its own run: ctest runs them side by side, and one
// must not remove the folder another is writing.
std::string TinyRunConfig(const std::string& name) {
  std::filesystem::remove_all(kOut + "/" + name + "-eval");
  std::filesystem::remove_all(kOut + "/" + name + "-pass");
  return TinyEchoConfig(
      name, {{"trainer",
              {{"stages", {"sft", "grpo"}},
               {"steps", 2},
               {"lr", 1e-3},
               {"sft",
                {{"demo_episodes", 16},
                 {"steps", 3},
                 {"batch_size", 6},
                 {"eval_every", 0}}}}},
             {"eval", {{"validation_episodes", 4}, {"test_episodes", 8}}}});
}

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

TEST(EvalCommandTest, FinalCheckpointReproducesTheRunsTestFigures) {
  const std::string config = TinyRunConfig("eval_tiny");
  const auto trained = RunClinrl("train " + config + " --no-baselines");
  ASSERT_EQ(trained.exit_code, 0) << trained.out;
  json grpo;
  for (const json& row : ReadJson(kOut + "/eval_tiny/summary.json")) {
    if (row["policy"] == "grpo" && row["split"] == "test") grpo = row;
  }
  ASSERT_TRUE(grpo.is_object()) << "no grpo test row in summary.json";
  // SFT 3 steps + GRPO 2: the last checkpoint holds the final weights.
  const auto evaluated = RunClinrl("eval " + config + " --model " + kOut +
                                   "/eval_tiny/checkpoints/step_00000005");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.out;
  const json eval = ReadJson(kOut + "/eval_tiny-eval/eval.json");
  // Greedy play of the same tasks with the same weights and seed: every
  // figure equal, the generated lengths included.
  EXPECT_EQ(eval["metrics"], grpo["metrics"]) << eval.dump(2);
  EXPECT_GT(eval["metrics"]["length/mean"].get<double>(), 0.0);
  EXPECT_TRUE(
      std::filesystem::exists(kOut + "/eval_tiny-eval/trajectories.jsonl"));

  const auto sampled =
      RunClinrl("eval " + config + " --model " + kOut +
                "/eval_tiny/checkpoints/step_00000005/model --samples 4 "
                "--temperature 1 --episodes 3 --name eval_tiny-pass --json");
  ASSERT_EQ(sampled.exit_code, 0) << sampled.out;
  const json pass = ReadJson(kOut + "/eval_tiny-pass/eval.json")["metrics"];
  EXPECT_EQ(pass["episodes"].get<double>(), 12.0);
  EXPECT_EQ(pass["samples_per_task"].get<double>(), 4.0);
  // pass@1 is the fraction of correct samples: the accuracy; pass@k grows
  // with k.
  EXPECT_DOUBLE_EQ(pass["pass@1"].get<double>(),
                   pass["accuracy"].get<double>());
  EXPECT_LE(pass["pass@1"].get<double>(), pass["pass@2"].get<double>());
  EXPECT_LE(pass["pass@2"].get<double>(), pass["pass@4"].get<double>());
}

// The checkpoint served by `clinrl serve` and played through its HTTP
// endpoint gives the figures of the same checkpoint played in this process:
// the server formats the chat as the rollout does and counts tokens as it
// does, so every budget cuts at the same point.
TEST(EvalCommandTest, ServedCheckpointGivesTheInProcessFigures) {
  const std::string config = TinyRunConfig("eval_served");
  ASSERT_EQ(RunClinrl("train " + config + " --no-baselines").exit_code, 0);
  const std::string model = kOut + "/eval_served/checkpoints/step_00000005";
  const auto local = RunClinrl("eval " + config + " --model " + model +
                               " --name eval_served-local");
  ASSERT_EQ(local.exit_code, 0) << local.out;

  clinrl::testing::BackgroundProcess server(
      {CLINRL_BINARY, "serve", model + "/model", "--port", "0", "--threads",
       "1"},
      kOut + "/eval_served-serve.log");
  ASSERT_TRUE(server.started());
  const std::string first = server.ReadLine(120);
  const size_t at = first.find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << "first line: " << first;
  const std::string url = first.substr(at, first.find(' ', at) - at);
  const auto remote = RunClinrl("eval " + config + " --endpoint " + url +
                                "/v1 --model model --concurrency 3 --name "
                                "eval_served-remote");
  EXPECT_EQ(server.Terminate(30), 143);
  ASSERT_EQ(remote.exit_code, 0) << remote.out;
  const json in_process = ReadJson(kOut + "/eval_served-local/eval.json");
  const json served = ReadJson(kOut + "/eval_served-remote/eval.json");
  EXPECT_EQ(served["metrics"], in_process["metrics"]) << served.dump(2);
  EXPECT_GT(served["metrics"]["length/mean"].get<double>(), 0.0);
  EXPECT_EQ(served["endpoint"], url + "/v1");
}

TEST(EvalCommandTest, UnreachableEndpointNamesItAndTheEpisode) {
  const auto r =
      RunClinrl("eval " + TinyRunConfig("eval_unreachable") +
                " --endpoint http://127.0.0.1:1 --model m --episodes 1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("POST http://127.0.0.1:1/v1/chat/completions"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("episode "), std::string::npos) << r.out;
}

// The replies of an OpenAI-style endpoint for dx_dialogue in tools mode: the
// first calls `ask` (with arguments that are not JSON when `malformed`), the
// next calls `diagnose`. Requests without dx_dialogue's tools are refused, as
// are (by the fake endpoint) tool messages OpenAI's API would refuse.
FakeChatEndpoint::ReplyFunction ScriptedDxDialogueReplies(bool malformed) {
  return [malformed](const json& body) {
    if (!body.contains("tools") || body["tools"].size() != 5) {
      throw std::invalid_argument("tools: expected dx_dialogue's 5 tools");
    }
    const json& messages = body["messages"];
    const bool first = messages.back()["role"] != "tool";
    const std::string name = first ? "ask" : "diagnose";
    const std::string arguments =
        !first      ? "{\"condition\": \"pneumonia\"}"
        : malformed ? "{\"question\": "
                    : "{\"question\": \"Do you have a fever?\"}";
    json reply = ToolCallReply("call_" + std::to_string(messages.size()), name,
                               arguments);
    reply["usage"] = {{"prompt_tokens", 100}, {"completion_tokens", 12}};
    return reply;
  };
}

std::vector<json> ReadJsonLines(const std::string& path) {
  std::vector<json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

// `clinrl eval NAME --endpoint` on dx_dialogue in tools mode with the
// scripted endpoint; returns the episodes it wrote.
std::vector<json> EvalToolsModeOnEndpoint(const std::string& name,
                                          const FakeChatEndpoint& endpoint) {
  const std::string config = TinyEchoConfig(
      name, {{"envs", json::array({{{"name", "dx_dialogue"},
                                    {"options", {{"action_mode", "tools"}}}}})},
             {"rollout",
              {{"max_turns", 4},
               {"max_tokens_per_turn", 64},
               {"max_tokens_per_episode", 4096}}}});
  std::filesystem::remove_all(kOut + "/" + name + "-ep");
  const auto r = RunClinrl("eval " + config + " --endpoint " + endpoint.url() +
                           " --model m --episodes 2 --name " + name + "-ep");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return ReadJsonLines(kOut + "/" + name + "-ep/trajectories.jsonl");
}

// A tools-mode env is played through the endpoint as OpenAI-compatible
// servers expect: the env's tools in the request, the reply's tool_calls
// sent to the env as the <tool_call> text it reads, and the env's answers
// sent back as tool messages with the call's id.
TEST(EvalCommandTest, EndpointPlaysAToolsModeEnvWithToolCalls) {
  FakeChatEndpoint endpoint(ScriptedDxDialogueReplies(/*malformed=*/false));
  const std::vector<json> episodes =
      EvalToolsModeOnEndpoint("eval_tools", endpoint);
  ASSERT_EQ(episodes.size(), 2u);
  for (const json& e : episodes) {
    const json& turns = e["turns"];
    ASSERT_EQ(turns.size(), 6u) << e.dump(1);
    EXPECT_EQ(turns[2]["content"],
              "<tool_call>\n{\"name\": \"ask\", \"arguments\": {\"question\": "
              "\"Do you have a fever?\"}}\n</tool_call>");
    EXPECT_EQ(turns[3]["role"], "tool");
    EXPECT_EQ(turns[3]["content"].get<std::string>().find("Invalid"),
              std::string::npos)
        << turns[3];
    EXPECT_EQ(turns[4]["content"],
              "<tool_call>\n{\"name\": \"diagnose\", \"arguments\": "
              "{\"condition\": \"pneumonia\"}}\n</tool_call>");
    // The diagnosis ended the episode: the env took both calls.
    EXPECT_EQ(e["termination"], "finished");
    EXPECT_EQ(e["info"]["invalid_actions"], 0) << e["info"];
  }
  bool answered = false;
  for (const json& body : endpoint.bodies()) {
    for (const json& m : body["messages"]) {
      answered |= m["role"] == "tool" && m.contains("tool_call_id");
    }
  }
  EXPECT_TRUE(answered) << "no tool message answered the first call";
}

// Arguments that are not JSON are the model's mistake: the env refuses the
// call in its observation and counts an invalid action; the run goes on.
TEST(EvalCommandTest, EndpointToolCallWithMalformedArgumentsIsAnInvalidAction) {
  FakeChatEndpoint endpoint(ScriptedDxDialogueReplies(/*malformed=*/true));
  const std::vector<json> episodes =
      EvalToolsModeOnEndpoint("eval_tools_bad", endpoint);
  ASSERT_EQ(episodes.size(), 2u);
  for (const json& e : episodes) {
    const json& turns = e["turns"];
    ASSERT_GE(turns.size(), 4u) << e.dump(1);
    EXPECT_EQ(turns[3]["role"], "tool");
    EXPECT_NE(turns[3]["content"].get<std::string>().find(
                  "\"arguments\" is a string that is not valid JSON"),
              std::string::npos)
        << turns[3];
    EXPECT_EQ(e["info"]["invalid_actions"], 1) << e["info"];
    EXPECT_EQ(e["termination"], "finished");
  }
}

TEST(EvalCommandTest, EndpointThatIsNotAUrlIsRefused) {
  ExpectOneLineError(RunClinrl("eval " + TinyRunConfig("eval_bad_url") +
                               " --endpoint 127.0.0.1:8000 --model m"),
                     "--endpoint: expected an http:// or https:// base URL");
}

TEST(EvalCommandTest, BadSampleCountNamesTheFlag) {
  ExpectOneLineError(RunClinrl("eval " + TinyRunConfig("eval_bad_samples") +
                               " --model nowhere --samples 0"),
                     "--samples: got 0, expected at least 1");
}

}  // namespace
