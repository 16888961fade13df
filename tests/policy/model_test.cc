// Transformer: Hugging Face parameter names, cached decoding against the full
// forward, padding invariance, and logits against an independent Python
// reference (tools/policy_reference.py, run with the system interpreter).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "core/error.h"
#include "policy/model_dir.h"
#include "policy/safetensors.h"
#include "policy/transformer.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

using testing::TempDir;
using testing::TinyConfig;

Transformer MakeModel(const ModelConfig& c, uint64_t seed) {
  Transformer m(c);
  m->ResetParameters(seed);
  // Larger weights than the 0.02 init make the logits spread out, so a
  // wrong mask or rotary position shows up clearly in the comparisons.
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) {
    if (p.dim() == 2) p.mul_(5.0);
  }
  m->eval();
  return m;
}

torch::Tensor RandomIds(int64_t b, int64_t t, int64_t vocab, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randint(vocab, {b, t}, gen, torch::kLong);
}

TEST(TransformerTest, ParameterNamesFollowHuggingFace) {
  Transformer qwen2(TinyConfig("qwen2"));
  std::set<std::string> names;
  int64_t count = 0;
  for (const auto& p : qwen2->named_parameters()) {
    names.insert(p.key());
    count += p.value().numel();
  }
  for (const char* n :
       {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.q_proj.bias",
        "model.layers.1.self_attn.k_proj.bias",
        "model.layers.1.self_attn.v_proj.weight",
        "model.layers.1.self_attn.o_proj.weight",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight",
        "model.norm.weight"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_FALSE(names.count("lm_head.weight"));  // tied
  EXPECT_FALSE(names.count("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_EQ(count, TinyConfig("qwen2").ParameterCount());

  Transformer llama(TinyConfig("llama"));
  std::set<std::string> lnames;
  for (const auto& p : llama->named_parameters()) lnames.insert(p.key());
  EXPECT_TRUE(lnames.count("lm_head.weight"));
  EXPECT_FALSE(lnames.count("model.layers.0.self_attn.q_proj.bias"));
  Transformer qwen3(TinyConfig("qwen3"));
  std::set<std::string> qnames;
  for (const auto& p : qwen3->named_parameters()) qnames.insert(p.key());
  EXPECT_TRUE(qnames.count("model.layers.0.self_attn.q_norm.weight"));
  EXPECT_TRUE(qnames.count("model.layers.1.self_attn.k_norm.weight"));
}

class FamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyTest, CachedDecodingMatchesFullForward) {
  const ModelConfig c = TinyConfig(GetParam());
  Transformer model = MakeModel(c, 11);
  torch::NoGradGuard no_grad;
  const int64_t B = 2, T = 24, prefix = 9;
  const torch::Tensor ids = RandomIds(B, T, c.vocab_size, 5);
  const torch::Tensor full = torch::log_softmax(model->forward(ids), -1);

  KvCache cache = model->MakeCache(B, T);
  std::vector<torch::Tensor> parts;
  parts.push_back(model->forward(ids.narrow(1, 0, prefix), {}, {}, &cache));
  for (int64_t t = prefix; t < T; ++t) {
    const auto pos = torch::full({B, 1}, t, torch::kLong);
    const auto mask = torch::ones({B, t + 1}, torch::kBool);
    parts.push_back(model->forward(ids.narrow(1, t, 1), pos, mask, &cache));
  }
  const torch::Tensor cached = torch::log_softmax(torch::cat(parts, 1), -1);
  const double diff = (cached - full).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4) << GetParam();
  EXPECT_EQ(cache.length(), T);
}

TEST_P(FamilyTest, PaddingOnEitherSideLeavesLogitsUnchanged) {
  const ModelConfig c = TinyConfig(GetParam());
  Transformer model = MakeModel(c, 12);
  torch::NoGradGuard no_grad;
  const torch::Tensor row = RandomIds(1, 10, c.vocab_size, 6);
  const torch::Tensor alone = model->forward(row);
  const int64_t pad = 4;
  const torch::Tensor fill = torch::full({1, pad}, 7, torch::kLong);
  const torch::Tensor real = torch::ones({1, 10}, torch::kBool);
  const torch::Tensor none = torch::zeros({1, pad}, torch::kBool);
  const torch::Tensor left = model->forward(torch::cat({fill, row}, 1), {},
                                            torch::cat({none, real}, 1));
  const torch::Tensor right = model->forward(torch::cat({row, fill}, 1), {},
                                             torch::cat({real, none}, 1));
  EXPECT_LT((left.narrow(1, pad, 10) - alone).abs().max().item<double>(), 1e-4);
  EXPECT_LT((right.narrow(1, 0, 10) - alone).abs().max().item<double>(), 1e-4);
}

TEST_P(FamilyTest, MatchesIndependentPythonReference) {
  const ModelConfig c = TinyConfig(GetParam());
  Transformer model = MakeModel(c, 13);
  TempDir dir;
  SaveModel(model, dir.path());
  // Row 0 full, row 1 left-padded, row 2 right-padded.
  const int64_t T = 14;
  const torch::Tensor ids = RandomIds(3, T, c.vocab_size, 7);
  torch::Tensor mask = torch::ones({3, T}, torch::kLong);
  mask[1].narrow(0, 0, 5).zero_();
  mask[2].narrow(0, 9, 5).zero_();
  nlohmann::json input;
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<int64_t> r(ids[b].data_ptr<int64_t>(),
                           ids[b].data_ptr<int64_t>() + T);
    std::vector<int64_t> m(mask[b].data_ptr<int64_t>(),
                           mask[b].data_ptr<int64_t>() + T);
    input["input_ids"].push_back(r);
    input["attention_mask"].push_back(m);
  }
  std::ofstream(dir.path() + "/input.json") << input.dump();
  const std::string cmd = fmt::format(
      "{} {}/tools/policy_reference.py {} {}/input.json "
      "{}/reference.safetensors",
      CLINRL_SYSTEM_PYTHON, CLINRL_SOURCE_DIR, dir.path(), dir.path(),
      dir.path());
  ASSERT_EQ(testing::RunShell(cmd), 0) << cmd;

  SafetensorsFile ref(dir.path() + "/reference.safetensors");
  const torch::Tensor expected = ref.Get("logits");
  torch::NoGradGuard no_grad;
  const torch::Tensor got = model->forward(ids, {}, mask);
  const torch::Tensor real = mask.to(torch::kBool).unsqueeze(-1);
  const double diff = (got - expected)
                          .abs()
                          .masked_fill(real.logical_not(), 0)
                          .max()
                          .item<double>();
  EXPECT_LT(diff, 1e-4) << GetParam();

  // BF16 tensors written by the Python side load and equal torch's rounding.
  for (const char* name :
       {"model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"}) {
    const torch::Tensor bf = ref.Get(std::string("bf16.") + name);
    ASSERT_EQ(bf.scalar_type(), torch::kBFloat16);
    torch::Tensor mine;
    for (const auto& p : model->named_parameters()) {
      if (p.key() == name) mine = p.value().detach().to(torch::kBFloat16);
    }
    ASSERT_TRUE(mine.defined());
    EXPECT_TRUE(torch::equal(bf.view(torch::kShort), mine.view(torch::kShort)))
        << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyTest,
                         ::testing::Values("qwen2", "qwen3", "llama"));

TEST(TransformerTest, SequenceLogProbsMatchLogSoftmaxAndMaskPadding) {
  const ModelConfig c = TinyConfig("qwen2");
  Transformer model = MakeModel(c, 14);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = RandomIds(2, 8, c.vocab_size, 8);
  torch::Tensor mask = torch::ones({2, 8}, torch::kBool);
  mask[1].narrow(0, 6, 2).fill_(false);
  const torch::Tensor lp = SequenceLogProbs(model, ids, mask);
  const torch::Tensor full =
      torch::log_softmax(model->forward(ids, {}, mask), -1);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 7; ++t) {
      const double want =
          mask[b][t + 1].item<bool>()
              ? full[b][t][ids[b][t + 1].item<int64_t>()].item<double>()
              : 0.0;
      EXPECT_NEAR(lp[b][t].item<double>(), want, 1e-5) << b << "," << t;
    }
  }
}

TEST(ModelDirTest, SaveLoadRoundTripAndShards) {
  const ModelConfig c = TinyConfig("llama");
  Transformer model = MakeModel(c, 15);
  TempDir dir;
  SaveModel(model, dir.path() + "/one");
  SaveModel(model, dir.path() + "/sharded", "float32", 40000);
  std::ifstream index(dir.path() + "/sharded/model.safetensors.index.json");
  ASSERT_TRUE(index.good());
  for (const char* sub : {"/one", "/sharded"}) {
    Transformer loaded = LoadModel(dir.path() + sub);
    auto a = model->named_parameters();
    auto b = loaded->named_parameters();
    for (const auto& p : a) {
      EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << sub << " " << p.key();
    }
  }
  // bfloat16 storage loads back as the rounded values.
  SaveModel(model, dir.path() + "/bf16", "bfloat16");
  Transformer bf = LoadModel(dir.path() + "/bf16");
  const auto w = model->named_parameters()["model.norm.weight"];
  EXPECT_TRUE(torch::equal(bf->named_parameters()["model.norm.weight"],
                           w.to(torch::kBFloat16).to(torch::kFloat)));
}

TEST(ModelDirTest, MissingOrMisShapedTensorIsNamed) {
  const ModelConfig c = TinyConfig("qwen2");
  Transformer model = MakeModel(c, 16);
  TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) {
    if (p.key() == "model.layers.1.mlp.up_proj.weight") continue;
    if (p.key() == "model.norm.weight") {
      tensors.emplace_back(p.key(), torch::ones({3}));
      continue;
    }
    tensors.emplace_back(p.key(), p.value().detach());
  }
  SaveCheckpoint(dir.path(), tensors);
  Transformer fresh(c);
  try {
    LoadWeights(fresh, CheckpointReader(dir.path()));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    const bool named =
        msg.find("model.layers.1.mlp.up_proj.weight") != std::string::npos ||
        msg.find("model.norm.weight") != std::string::npos;
    EXPECT_TRUE(named) << msg;
  }
  tensors.clear();
  for (const auto& p : model->named_parameters()) {
    tensors.emplace_back(p.key(), p.key() == "model.norm.weight"
                                      ? torch::ones({3})
                                      : p.value().detach());
  }
  SaveCheckpoint(dir.path(), tensors);
  try {
    LoadWeights(fresh, CheckpointReader(dir.path()));
    FAIL() << "expected an error";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("model.norm.weight"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("[3]"), std::string::npos) << e.what();
  }
}

TEST(ModelConfigTest, ReadsHuggingFaceConfigAndNamesBadFields) {
  const nlohmann::json qwen = {
      {"model_type", "qwen2"},       {"hidden_size", 896},
      {"intermediate_size", 4864},   {"num_hidden_layers", 24},
      {"num_attention_heads", 14},   {"num_key_value_heads", 2},
      {"vocab_size", 151936},        {"max_position_embeddings", 32768},
      {"rms_norm_eps", 1e-6},        {"rope_theta", 1000000.0},
      {"tie_word_embeddings", true}, {"eos_token_id", 151645}};
  const ModelConfig c = ModelConfig::FromJson(qwen);
  EXPECT_EQ(c.HeadDim(), 64);
  EXPECT_TRUE(c.attention_bias);
  // Qwen2.5-0.5B: 494,032,768 parameters as published.
  EXPECT_EQ(c.ParameterCount(), 494032768);
  nlohmann::json bad = qwen;
  bad["num_key_value_heads"] = 3;
  try {
    ModelConfig::FromJson(bad);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("num_key_value_heads"),
              std::string::npos);
  }
  bad = qwen;
  bad["hidden_size"] = "big";
  EXPECT_THROW(ModelConfig::FromJson(bad), BadRequest);
  EXPECT_EQ(ModelConfig::FromJson(c.ToJson()).ToJson(), c.ToJson());
}

}  // namespace
}  // namespace clinrl::policy
