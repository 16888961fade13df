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
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "core/atomic_file.h"
#include "policy/bpe_tokenizer.h"
#include "policy/model_dir.h"
#include "policy/transformer.h"
#include "tests/cli/background_process.h"
#include "tests/policy/test_util.h"

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

  const std::string log = dir.path() + "/serve.log";
  clinrl::testing::BackgroundProcess server(
      {CLINRL_BINARY, "serve", model, "--port", "0", "--threads", "2",
       "--max-batch", "64"},
      log);
  ASSERT_TRUE(server.started());
  const std::string first = server.ReadLine(120);
  const size_t at = first.find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << "first line: " << first;
  const std::string url = first.substr(at, first.find(' ', at) - at);

  // The model folder goes along for the reference log-probs, which
  // transformers computes from the same files.
  const ShellResult client =
      Shell(std::string("timeout 600 '") + CLINRL_PYTHON +
            "' '" CLINRL_SOURCE_DIR "/tests/serve/openai_client_test.py' '" +
            url + "' tiny-model '" + model + "'");
  EXPECT_EQ(client.status, 0) << client.output;
  std::cout << client.output;

  EXPECT_EQ(server.Terminate(30), 143);  // 128 + SIGTERM: a clean stop
  const std::string stopped = server.ReadLine(5);
  EXPECT_NE(stopped.find("clinrl serve: stopped"), std::string::npos)
      << stopped;
}

// The reply of the tool-calling model, one token per piece: text, an open
// tag split over three tokens (the stream must not show "<tool"), a call,
// then a second call whose tags are other tokens. Every piece is a distinct
// token, so "the token after this one" is a function of the token alone.
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
// then <|im_end|>: as in served_policy_wiring_test.cc, one layer that adds
// nothing, one-hot embeddings, and a head that maps each token to the next
// piece (any token outside the reply to the first piece).
std::string MakeToolCallModel(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> merges;
  for (const std::string& piece : kToolReplyPieces) {
    for (size_t n = 2; n <= piece.size(); ++n) {
      std::pair<std::string, std::string> merge(piece.substr(0, n - 1),
                                                piece.substr(n - 1, 1));
      if (std::find(merges.begin(), merges.end(), merge) == merges.end()) {
        merges.push_back(merge);
      }
    }
  }
  const auto tokenizer = policy::BpeTokenizer::FromByteMerges(
      merges, {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  const int64_t vocab = tokenizer->size();
  std::vector<int64_t> chain;
  for (const std::string& piece : kToolReplyPieces) {
    int64_t id = 0;
    while (id < vocab && tokenizer->Decode({id}, false) != piece) ++id;
    EXPECT_LT(id, vocab) << "no token for " << piece;
    EXPECT_EQ(std::count(chain.begin(), chain.end(), id), 0) << piece;
    chain.push_back(id);
  }
  chain.push_back(*tokenizer->TokenId("<|im_end|>"));
  policy::ModelConfig config;
  config.vocab_size = vocab;
  config.hidden_size = 16 * ((vocab + 15) / 16);  // one dimension per token
  config.intermediate_size = 32;
  config.num_hidden_layers = 1;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.max_position_embeddings = 1024;
  config.tie_word_embeddings = false;
  policy::InitModelDir(config, *tokenizer, dir, 1);
  policy::Transformer model = policy::LoadModel(dir);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    p.value().fill_(p.key().find("norm") != std::string::npos ? 1.0 : 0.0);
  }
  auto params = model->named_parameters();
  auto embed = params["model.embed_tokens.weight"];
  auto head = params["lm_head.weight"];
  for (int64_t t = 0; t < vocab; ++t) {
    embed[t][t] = 1.0;
    const auto at = std::find(chain.begin(), chain.end() - 1, t);
    head[at == chain.end() - 1 ? chain[0] : *(at + 1)][t] = 1.0;
  }
  policy::SaveModel(model, dir);
  WriteFileAtomic(dir + "/chat_template.jinja", kToolTemplate);
  return dir;
}

TEST(ServeCliTest, StreamedToolCallsMatchTheWholeAnswer) {
  ASSERT_TRUE(std::filesystem::exists(CLINRL_PYTHON))
      << "CLINRL_PYTHON " << CLINRL_PYTHON
      << " is missing: run launch/setup to create the venv";
  TempDir dir;
  const std::string model = MakeToolCallModel(dir.path() + "/tool-model");
  clinrl::testing::BackgroundProcess server(
      {CLINRL_BINARY, "serve", model, "--port", "0", "--threads", "1"},
      dir.path() + "/serve.log");
  ASSERT_TRUE(server.started());
  const std::string first = server.ReadLine(120);
  const size_t at = first.find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << "first line: " << first;
  const std::string url = first.substr(at, first.find(' ', at) - at);
  const ShellResult client = Shell(
      std::string("timeout 300 '") + CLINRL_PYTHON +
      "' '" CLINRL_SOURCE_DIR "/tests/serve/openai_tool_stream_test.py' '" +
      url + "' tool-model");
  EXPECT_EQ(client.status, 0) << client.output;
  std::cout << client.output;
  EXPECT_EQ(server.Terminate(30), 143);
}

}  // namespace
}  // namespace clinrl::serve
