// `clinrl model init`, `generate`, `tokenizer train` and `tokenize` end to
// end: files written, JSON printed, exit code 2 with the field named on bad
// input.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "policy/lora_checkpoint.h"
#include "policy/model_dir.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

using testing::TempDir;

struct Result {
  int status;
  std::string output;  // stdout and stderr
};

Result RunClinrl(const std::string& args) {
  const std::string cmd = std::string(CLINRL_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    out.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  return {WEXITSTATUS(status), out};
}

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '{')
      lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

const char* kTinyConfig = R"({"model_type": "qwen2", "hidden_size": 64,
  "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "vocab_size": 300, "max_position_embeddings": 256,
  "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true})";

// `clinrl model export --adapter`: the folder it writes is a plain model
// whose logits are the adapter-applied model's.
TEST(PolicyCliTest, ModelExportMergesAnAdapter) {
  TempDir dir;
  WriteFileAtomic(dir.path() + "/tiny.json", kTinyConfig);
  const auto init = RunClinrl("model init --config " + dir.path() +
                              "/tiny.json --out " + dir.path() + "/base");
  ASSERT_EQ(init.status, 0) << init.output;
  Transformer adapted = LoadModel(dir.path() + "/base");
  LoraOptions lora;
  lora.rank = 4;
  lora.target_modules = {"q_proj", "o_proj", "gate_proj", "down_proj"};
  adapted->AddLora(lora);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : adapted->named_parameters()) {
      if (IsLoraParameter(p.key())) p.value().normal_(0.0, 0.5);
    }
  }
  SaveLoraAdapter(adapted, dir.path() + "/adapter");
  const auto out =
      RunClinrl("model export --model " + dir.path() + "/base --adapter " +
                dir.path() + "/adapter --out " + dir.path() + "/merged");
  ASSERT_EQ(out.status, 0) << out.output;
  Transformer merged = LoadModel(dir.path() + "/merged");
  EXPECT_FALSE(merged->has_lora());
  EXPECT_TRUE(std::ifstream(dir.path() + "/merged/tokenizer.json").good());
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::tensor({{5, 17, 200, 3, 9}}, torch::kLong);
  EXPECT_LT(
      (merged->forward(ids) - adapted->forward(ids)).abs().max().item<double>(),
      1e-4);
  const auto bad =
      RunClinrl("model export --model " + dir.path() + "/base --adapter " +
                dir.path() + "/nowhere --out " + dir.path() + "/x");
  // A missing file is NotFound: exit status 1 (2 is for bad configs and
  // requests).
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find("adapter_config.json"), std::string::npos)
      << bad.output;
}

TEST(PolicyCliTest, ModelInitThenGenerate) {
  TempDir dir;
  WriteFileAtomic(dir.path() + "/tiny.json", kTinyConfig);
  const auto init = RunClinrl("model init --config " + dir.path() +
                              "/tiny.json --out " + dir.path() + "/model");
  ASSERT_EQ(init.status, 0) << init.output;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json",
                        "tokenizer_config.json"}) {
    EXPECT_TRUE(std::ifstream(dir.path() + "/model/" + f).good()) << f;
  }
  const std::string gen = "generate --model " + dir.path() +
                          "/model --prompt 'BP 120/80' --prompt 'HR 72' "
                          "--max-new-tokens 6 --seed 4 --no-default-stop "
                          "--threads 1 --json";
  const auto a = RunClinrl(gen);
  ASSERT_EQ(a.status, 0) << a.output;
  const auto lines = JsonLines(a.output);
  ASSERT_EQ(lines.size(), 2u) << a.output;
  for (const auto& l : lines) {
    EXPECT_EQ(l["token_ids"].size(), 6u);
    EXPECT_EQ(l["logprobs"].size(), 6u);
    EXPECT_EQ(l["finish_reason"], "length");
  }
  EXPECT_EQ(RunClinrl(gen).output, a.output);  // same seed, same completions
}

TEST(PolicyCliTest, BadInputExitsTwoNamingTheField) {
  TempDir dir;
  WriteFileAtomic(dir.path() + "/bad.json",
                  R"({"hidden_size": 64, "intermediate_size": 128})");
  const auto init = RunClinrl("model init --config " + dir.path() +
                              "/bad.json --out " + dir.path() + "/m");
  EXPECT_EQ(init.status, 2) << init.output;
  EXPECT_NE(init.output.find("num_hidden_layers"), std::string::npos)
      << init.output;
  WriteFileAtomic(dir.path() + "/tiny.json", kTinyConfig);
  ASSERT_EQ(RunClinrl("model init --config " + dir.path() +
                      "/tiny.json --out " + dir.path() + "/m")
                .status,
            0);
  const auto gen =
      RunClinrl("generate --model " + dir.path() + "/m --prompt x --top-p 1.5");
  EXPECT_EQ(gen.status, 2) << gen.output;
  EXPECT_NE(gen.output.find("top_p"), std::string::npos) << gen.output;
}

TEST(PolicyCliTest, TokenizerTrainAndTokenize) {
  TempDir dir;
  std::string corpus;
  for (int i = 0; i < 200; ++i) {
    corpus += "Patient denies chest pain. Continue metformin 500 mg daily.\n";
  }
  WriteFileAtomic(dir.path() + "/corpus.txt", corpus);
  const auto train =
      RunClinrl("tokenizer train --corpus " + dir.path() +
                "/corpus.txt --vocab-size 300 --out " + dir.path() + "/tok");
  ASSERT_EQ(train.status, 0) << train.output;
  const auto summary = JsonLines(train.output);
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_LT(summary[0]["corpus_tokens"].get<int64_t>(),
            summary[0]["corpus_bytes"].get<int64_t>() / 2);
  WriteFileAtomic(dir.path() + "/lines.txt",
                  "Patient denies chest pain.\nab\n");
  const auto ids = RunClinrl("tokenize --tokenizer " + dir.path() + "/tok < " +
                             dir.path() + "/lines.txt");
  ASSERT_EQ(ids.status, 0) << ids.output;
  std::istringstream in(ids.output);
  std::string first, second;
  std::getline(in, first);
  std::getline(in, second);
  EXPECT_LT(nlohmann::json::parse(first).size(), 10u) << first;
  const auto bytes =
      RunClinrl("tokenize --tokenizer byte < " + dir.path() + "/lines.txt");
  EXPECT_NE(bytes.output.find("[97,98]"), std::string::npos) << bytes.output;
}

}  // namespace
}  // namespace clinrl::policy
