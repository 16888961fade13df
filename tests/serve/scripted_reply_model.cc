#include "tests/serve/scripted_reply_model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <utility>

#include "policy/bpe_tokenizer.h"
#include "policy/model_config.h"
#include "policy/model_dir.h"
#include "policy/transformer.h"

namespace clinrl::serve::testing {
namespace {

// Byte-level BPE whose merges spell every piece, so each piece is one id.
std::unique_ptr<policy::BpeTokenizer> PieceTokenizer(
    const std::vector<std::string>& pieces) {
  std::vector<std::pair<std::string, std::string>> merges;
  for (const std::string& piece : pieces) {
    for (size_t n = 2; n <= piece.size(); ++n) {
      std::pair<std::string, std::string> merge(piece.substr(0, n - 1),
                                                piece.substr(n - 1, 1));
      if (std::find(merges.begin(), merges.end(), merge) == merges.end()) {
        merges.push_back(merge);
      }
    }
  }
  return policy::BpeTokenizer::FromByteMerges(
      merges, {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
}

// The token ids of the reply in order, <|im_end|> last.
std::vector<int64_t> ReplyChain(const policy::BpeTokenizer& tokenizer,
                                const std::vector<std::string>& pieces) {
  const int64_t vocab = tokenizer.size();
  std::vector<int64_t> chain;
  for (const std::string& piece : pieces) {
    int64_t id = 0;
    while (id < vocab && tokenizer.Decode({id}, false) != piece) ++id;
    EXPECT_LT(id, vocab) << "no token for " << piece;
    EXPECT_EQ(std::count(chain.begin(), chain.end(), id), 0) << piece;
    chain.push_back(id);
  }
  chain.push_back(*tokenizer.TokenId("<|im_end|>"));
  return chain;
}

}  // namespace

std::string WriteScriptedReplyModel(const std::vector<std::string>& pieces,
                                    const std::string& dir) {
  const auto tokenizer = PieceTokenizer(pieces);
  const std::vector<int64_t> chain = ReplyChain(*tokenizer, pieces);
  const int64_t vocab = tokenizer->size();
  // Written as a config.json: a one-layer Qwen2 with one hidden dimension
  // per token (for the one-hot embeddings), an untied head, and room for a
  // dx_dialogue conversation sent to the served patient.
  const policy::ModelConfig config =
      policy::ModelConfig::FromJson({{"model_type", "qwen2"},
                                     {"vocab_size", vocab},
                                     {"hidden_size", 16 * ((vocab + 15) / 16)},
                                     {"intermediate_size", 32},
                                     {"num_hidden_layers", 1},
                                     {"num_attention_heads", 4},
                                     {"num_key_value_heads", 2},
                                     {"max_position_embeddings", 4096},
                                     {"tie_word_embeddings", false}});
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
    const auto at = std::find(chain.begin(), chain.end() - 1, t);
    head[at == chain.end() - 1 ? chain[0] : *(at + 1)][t] = 1.0;
  }
  policy::SaveModel(model, dir);
  return dir;
}

}  // namespace clinrl::serve::testing
