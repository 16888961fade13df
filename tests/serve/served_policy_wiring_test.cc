// A policy served by `clinrl serve` plugged into the places another run asks
// a model: the rubric judge (`llm_judge`, through `clinrl rubric eval`) and
// dx_dialogue's LLM patient (through `clinrl env demos`).
//
// The served model is built so that its greedy reply is known: a one-layer
// model whose layers add nothing, whose embeddings are one-hot, and whose
// head maps every token to one token that decodes to the whole reply, and
// that token to <|im_end|>. So whatever it is asked, it answers the reply and
// stops, and the test checks what the judge and the patient made of it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "policy/bpe_tokenizer.h"
#include "policy/model_dir.h"
#include "policy/transformer.h"
#include "tests/cli/background_process.h"
#include "tests/cli/run_clinrl.h"
#include "tests/policy/test_util.h"

namespace clinrl::serve {
namespace {

using nlohmann::json;
using policy::testing::TempDir;
using testing::BackgroundProcess;
using testing::RunClinrl;

constexpr const char* kReply = R"({"criteria_met": true})";

// Byte-level BPE whose last merge is the whole reply, one id.
std::unique_ptr<policy::BpeTokenizer> ReplyTokenizer(int64_t* reply_id) {
  const std::string reply = kReply;
  std::vector<std::pair<std::string, std::string>> merges;
  for (size_t n = 2; n <= reply.size(); ++n) {
    merges.emplace_back(reply.substr(0, n - 1), reply.substr(n - 1, 1));
  }
  auto tokenizer = policy::BpeTokenizer::FromByteMerges(
      merges, {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  *reply_id = 256 + static_cast<int64_t>(merges.size()) - 1;
  EXPECT_EQ(tokenizer->Decode({*reply_id}, false), reply);
  return tokenizer;
}

// The model folder whose greedy reply to anything is kReply.
std::string MakeFixedReplyModel(const std::string& dir) {
  int64_t reply = 0;
  const auto tokenizer = ReplyTokenizer(&reply);
  const int64_t vocab = tokenizer->size();
  const int64_t im_end = *tokenizer->TokenId("<|im_end|>");
  policy::ModelConfig config;
  config.vocab_size = vocab;
  config.hidden_size = 16 * ((vocab + 15) / 16);  // one dimension per token
  config.intermediate_size = 32;
  config.num_hidden_layers = 1;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.max_position_embeddings = 4096;
  config.tie_word_embeddings = false;
  policy::InitModelDir(config, *tokenizer, dir, 1);
  policy::Transformer model = policy::LoadModel(dir);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    // Norms pass the stream through; every other weight is zero, so the
    // layer adds nothing and the stream is the token's embedding.
    p.value().fill_(p.key().find("norm") != std::string::npos ? 1.0 : 0.0);
  }
  auto params = model->named_parameters();
  auto embed = params["model.embed_tokens.weight"];
  auto head = params["lm_head.weight"];
  for (int64_t t = 0; t < vocab; ++t) {
    embed[t][t] = 1.0;
    if (t != reply) head[reply][t] = 1.0;  // any token -> the reply
  }
  head[im_end][reply] = 1.0;  // the reply -> end of turn
  policy::SaveModel(model, dir);
  return dir;
}

// `clinrl serve` on the fixed-reply model; the base URL it printed.
class FixedReplyServer {
 public:
  explicit FixedReplyServer(const std::string& dir)
      : process_({CLINRL_BINARY, "serve", MakeFixedReplyModel(dir + "/model"),
                  "--port", "0", "--threads", "1"},
                 dir + "/serve.log") {
    const std::string first = process_.ReadLine(120);
    const size_t at = first.find("http://127.0.0.1:");
    if (at != std::string::npos) {
      url_ = first.substr(at, first.find(' ', at) - at);
    }
  }
  const std::string& url() const { return url_; }
  int Stop() { return process_.Terminate(30); }

 private:
  BackgroundProcess process_;
  std::string url_;
};

TEST(ServedPolicyWiring, ServedModelIsTheRubricJudge) {
  TempDir dir;
  FixedReplyServer server(dir.path());
  ASSERT_FALSE(server.url().empty()) << "clinrl serve printed no URL";
  const json row = {
      {"prompt_id", "p1"},
      {"prompt", {{{"role", "user"}, {"content", "I have a fever."}}}},
      {"rubrics",
       {{{"criterion", "Asks about the duration"},
         {"points", 5},
         {"tags", {"axis:completeness"}}},
        {{"criterion", "Advises fluids"},
         {"points", 3},
         {"tags", {"axis:accuracy"}}},
        {{"criterion", "Recommends antibiotics"},
         {"points", -2},
         {"tags", {"axis:accuracy"}}}}}};
  std::ofstream(dir.path() + "/rows.jsonl") << row.dump() << "\n";
  std::ofstream(dir.path() + "/responses.jsonl")
      << json{{"prompt_id", "p1"}, {"response", "Drink water."}}.dump() << "\n";
  const auto graded = RunClinrl(
      "rubric eval --rubrics " + dir.path() + "/rows.jsonl --responses " +
      dir.path() + "/responses.jsonl --matcher llm_judge --judge-url " +
      server.url() + " --judge-model model");
  EXPECT_EQ(server.Stop(), 143);
  ASSERT_EQ(graded.exit_code, 0) << graded.out;
  // It prints one JSON line last.
  std::string last = graded.out;
  while (!last.empty() && last.back() == '\n') last.pop_back();
  const json result = json::parse(last.substr(last.rfind('\n') + 1));
  // The judge said "met" to every criterion, the harmful one included:
  // (5 + 3 - 2) / 8 by HealthBench's formula.
  EXPECT_DOUBLE_EQ(result.at("overall").get<double>(), 0.75) << graded.out;
}

TEST(ServedPolicyWiring, ServedModelIsTheDxDialoguePatient) {
  TempDir dir;
  FixedReplyServer server(dir.path());
  ASSERT_FALSE(server.url().empty()) << "clinrl serve printed no URL";
  const json options = {
      {"patient",
       {{"kind", "llm"}, {"endpoint", server.url()}, {"model", "model"}}}};
  const std::string out = dir.path() + "/demos.jsonl";
  const auto played = RunClinrl(
      "env demos --env dx_dialogue --policy random --n 3 --options '" +
      options.dump() + "' --out " + out);
  EXPECT_EQ(server.Stop(), 143);
  ASSERT_EQ(played.exit_code, 0) << played.out;
  // Each ASK went to the served model; its reply names no finding and no
  // condition, so the rule patient let it stand as the patient's words.
  std::ifstream in(out);
  int asked = 0, answered = 0;
  std::string all;
  for (std::string line; std::getline(in, line);) {
    all += line + "\n";
    const json episode = json::parse(line);
    for (const json& turn : episode.at("turns")) {
      const std::string content = turn.at("content");
      if (turn.at("role") == "assistant" && content.rfind("ASK", 0) == 0) {
        ++asked;
      }
      if (turn.at("role") == "user" && content == kReply) ++answered;
    }
  }
  ASSERT_GT(asked, 0) << "the random policy asked nothing:\n" << all;
  EXPECT_EQ(answered, asked) << all;
}

}  // namespace
}  // namespace clinrl::serve
