// `clinrl serve` end to end: a tiny random model folder made with `clinrl
// model init`, the server started on port 0 (its URL read from its first
// line), and tests/serve/openai_client_test.py driving it with the official
// `openai` client under the venv's Python (a missing Python or package fails
// the test). Then SIGTERM must stop the server cleanly. A second server, of a
// model whose greedy reply is a fixed text with tool calls, checks streamed
// tool calls through tests/serve/openai_tool_stream_test.py.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "policy/tokenizer.h"
#include "tests/cli/background_process.h"
#include "tests/policy/test_util.h"
#include "tests/serve/scripted_reply_model.h"
#include "tests/serve/served_model.h"

namespace clinrl::serve {
namespace {

using policy::testing::TempDir;

const char* kTinyConfig = R"({"model_type": "qwen2", "hidden_size": 64,
  "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "vocab_size": 300, "max_position_embeddings": 256,
  "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true})";

struct ShellResult {
  int status = -1;
  std::string output;
};

ShellResult Shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed: " + command};
  ShellResult run;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    run.output.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(ServeCliTest, OpenAiClientGetsBatchedAnswers) {
  ASSERT_TRUE(std::filesystem::exists(CLINRL_PYTHON))
      << "CLINRL_PYTHON " << CLINRL_PYTHON
      << " is missing: run launch/setup to create the venv";
  TempDir dir;
  WriteFileAtomic(dir.path() + "/tiny.json", kTinyConfig);
  const std::string model = dir.path() + "/tiny-model";
  const ShellResult init =
      Shell(std::string(CLINRL_BINARY) + " model init --config " + dir.path() +
            "/tiny.json --out " + model);
  ASSERT_EQ(init.status, 0) << init.output;

  testing::ServedModel server(model, dir.path() + "/serve.log",
                              {"--threads", "2", "--max-batch", "64"});
  const std::string url = server.url();
  ASSERT_FALSE(url.empty()) << "first line: " << server.first_line();

  // The model folder goes along for the reference log-probs, which
  // transformers computes from the same files.
  const ShellResult client =
      Shell(std::string("timeout 600 '") + CLINRL_PYTHON +
            "' '" CLINRL_SOURCE_DIR "/tests/serve/openai_client_test.py' '" +
            url + "' tiny-model '" + model + "'");
  EXPECT_EQ(client.status, 0) << client.output;
  std::cout << client.output;

  EXPECT_EQ(server.Stop(), 143);  // 128 + SIGTERM: a clean stop
  const std::string stopped = server.ReadLine(5);
  EXPECT_NE(stopped.find("clinrl serve: stopped"), std::string::npos)
      << stopped;
}

// The reply of the tool-calling model, one token per piece: text, an open
// tag split over three tokens (the stream must not show "<tool"), a call,
// then a second call whose tags are other tokens. Every piece is a distinct
// token, as WriteScriptedReplyModel needs.
const std::vector<std::string> kToolReplyPieces = {
    "Let",
    " me",
    " check",
    ".",
    "<tool",
    "_call",
    ">",
    R"({"name": "get_vitals", )",
    R"("arguments": {"patient": )",
    R"("p7"}})",
    "</tool_call>",
    "\n\n",
    "<tool_call>",
    R"({"name": "get_labs", "arguments": {}})",
    "</tool",
    "_call>"};

// A ChatML template that renders `tools` (the served folder must have one:
// ChatML without a template refuses tools).
constexpr const char* kToolTemplate =
    "{%- if tools %}<|im_start|>system\nTools: {{ tools | tojson }}"
    "<|im_end|>\n{% endif %}"
    "{%- for message in messages %}<|im_start|>{{ message.role }}\n"
    "{{ message.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

// The model folder whose greedy reply to anything is the pieces joined and
// then <|im_end|>, with a template that renders tools.
std::string MakeToolCallModel(const std::string& dir) {
  testing::WriteScriptedReplyModel(kToolReplyPieces, dir);
  WriteFileAtomic(dir + "/chat_template.jinja", kToolTemplate);
  return dir;
}

TEST(ServeCliTest, StreamedToolCallsMatchTheWholeAnswer) {
  ASSERT_TRUE(std::filesystem::exists(CLINRL_PYTHON))
      << "CLINRL_PYTHON " << CLINRL_PYTHON
      << " is missing: run launch/setup to create the venv";
  TempDir dir;
  const std::string model = MakeToolCallModel(dir.path() + "/tool-model");
  testing::ServedModel server(model, dir.path() + "/serve.log");
  const std::string url = server.url();
  ASSERT_FALSE(url.empty()) << "first line: " << server.first_line();
  const ShellResult client = Shell(
      std::string("timeout 300 '") + CLINRL_PYTHON +
      "' '" CLINRL_SOURCE_DIR "/tests/serve/openai_tool_stream_test.py' '" +
      url + "' tool-model");
  EXPECT_EQ(client.status, 0) << client.output;
  std::cout << client.output;
  EXPECT_EQ(server.Stop(), 143);
}

// A model whose config.json lists an eos id beside the chat template's
// (Llama 3.1's <|eom_id|> beside <|eot_id|>): `clinrl generate`, with and
// without --chat, and `clinrl serve` stop on it, as transformers' generate
// does, rather than running on to the template's end of turn.
TEST(ServeCliTest, GenerateAndServeStopOnTheModelsEosIds) {
  ASSERT_TRUE(std::filesystem::exists(CLINRL_PYTHON))
      << "CLINRL_PYTHON " << CLINRL_PYTHON
      << " is missing: run launch/setup to create the venv";
  TempDir dir;
  const std::string model = dir.path() + "/eos-model";
  testing::WriteScriptedReplyModel({"Hello", " there", " friend"}, model);
  const auto tokenizer = policy::LoadTokenizer(model);
  const std::vector<int64_t> there = tokenizer->Encode(" there");
  ASSERT_EQ(there.size(), 1u);
  nlohmann::json config = nlohmann::json::parse(
      policy::testing::ReadTextFile(model + "/config.json"));
  config["eos_token_id"].push_back(there[0]);
  WriteFileAtomic(model + "/config.json", config.dump(2));

  for (const char* chat : {"", " --chat"}) {
    const ShellResult gen =
        Shell(std::string(CLINRL_BINARY) + " generate --model " + model +
              " --prompt hi --temperature 0 --max-new-tokens 8 --threads 1 "
              "--json" +
              chat);
    ASSERT_EQ(gen.status, 0) << gen.output;
    const auto line = nlohmann::json::parse(gen.output);
    EXPECT_EQ(line["completion"], "Hello there") << gen.output;
    EXPECT_EQ(line["finish_reason"], "stop_token") << gen.output;
  }

  testing::ServedModel server(model, dir.path() + "/serve.log");
  const std::string url = server.url();
  ASSERT_FALSE(url.empty()) << "first line: " << server.first_line();
  // One chat request with the standard library's HTTP client.
  WriteFileAtomic(dir.path() + "/ask.py", R"(import json, sys, urllib.request
body = json.dumps({"model": "eos-model", "temperature": 0, "max_tokens": 8,
                   "messages": [{"role": "user", "content": "hi"}]})
req = urllib.request.Request(sys.argv[1] + "/v1/chat/completions",
                             body.encode(),
                             {"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=60).read().decode())
)");
  const ShellResult reply =
      Shell(std::string("timeout 120 '") + CLINRL_PYTHON + "' '" + dir.path() +
            "/ask.py' '" + url + "'");
  ASSERT_EQ(reply.status, 0) << reply.output;
  const auto answer = nlohmann::json::parse(reply.output);
  EXPECT_EQ(answer["choices"][0]["message"]["content"], "Hello there")
      << reply.output;
  EXPECT_EQ(answer["choices"][0]["finish_reason"], "stop") << reply.output;
  EXPECT_EQ(server.Stop(), 143);
}

}  // namespace
}  // namespace clinrl::serve
