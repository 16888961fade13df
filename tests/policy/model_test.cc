// Transformer: Hugging Face parameter names, cached decoding against the full
// forward, padding invariance, and parity with Hugging Face transformers in
// both directions (tests/policy/reference/hf_models.py, run with the venv
// interpreter): logits and greedy tokens of checkpoints either side saved.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <tuple>

#include "core/error.h"
#include "policy/generator.h"
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

// Activation checkpointing recomputes each layer in backward: the loss and
// every parameter's gradient are those of the plain backward (fp32, 1e-6),
// padding and all; forwards without autograd are not checkpointed.
TEST_P(FamilyTest, ActivationCheckpointingGivesTheSameGradients) {
  const ModelConfig c = TinyConfig(GetParam());
  const int64_t B = 3, T = 20;
  const torch::Tensor ids = RandomIds(B, T, c.vocab_size, 7);
  torch::Tensor key_mask = torch::ones({B, T}, torch::kBool);
  key_mask.index_put_({0, torch::indexing::Slice(0, 5)}, false);  // left pad
  std::map<std::string, torch::Tensor> grads[2];
  double losses[2] = {0, 0};
  for (int checkpointing = 0; checkpointing < 2; ++checkpointing) {
    Transformer model = MakeModel(c, 13);
    model->set_activation_checkpointing(checkpointing == 1);
    const torch::Tensor logits = model->forward(ids, {}, key_mask);
    const torch::Tensor loss = torch::log_softmax(logits, -1)
                                   .select(-1, 1)
                                   .masked_select(key_mask)
                                   .mean();
    loss.backward();
    losses[checkpointing] = loss.item<double>();
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      grads[checkpointing][p.key()] = p.value().grad().clone();
    }
  }
  EXPECT_EQ(losses[0], losses[1]) << GetParam();
  for (const auto& [name, plain] : grads[0]) {
    const double diff = (grads[1].at(name) - plain).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6) << GetParam() << " " << name;
  }
}

// Under bf16 autocast the recompute in backward casts as the forward did:
// checkpointed gradients equal the plain bf16 backward's.
TEST_P(FamilyTest, CheckpointingUnderBf16GivesTheSameGradients) {
  const ModelConfig c = TinyConfig(GetParam());
  const torch::Tensor ids = RandomIds(2, 16, c.vocab_size, 8);
  std::map<std::string, torch::Tensor> grads[2];
  for (int checkpointing = 0; checkpointing < 2; ++checkpointing) {
    Transformer model = MakeModel(c, 14);
    model->set_precision(Precision::kBf16);
    model->set_activation_checkpointing(checkpointing == 1);
    const torch::Tensor logits = model->forward(ids);
    EXPECT_EQ(logits.scalar_type(), torch::kBFloat16);
    torch::log_softmax(logits.to(torch::kFloat), -1)
        .select(-1, 1)
        .mean()
        .backward();
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      // Master weights and their gradients stay float32.
      EXPECT_EQ(p.value().scalar_type(), torch::kFloat) << p.key();
      EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat) << p.key();
      grads[checkpointing][p.key()] = p.value().grad().clone();
    }
  }
  for (const auto& [name, plain] : grads[0]) {
    const double diff = (grads[1].at(name) - plain).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6) << GetParam() << " " << name;
  }
}

// Packed rows: three sequences in one row (and a second row with padding)
// give, token for token, the logits of each sequence run on its own: the
// block-diagonal mask keeps them apart and positions restart per sequence.
TEST_P(FamilyTest, PackedSequencesMatchSeparateForwards) {
  const ModelConfig c = TinyConfig(GetParam());
  Transformer model = MakeModel(c, 15);
  torch::NoGradGuard no_grad;
  const std::vector<std::vector<int64_t>> rows_lengths = {{5, 7, 4}, {9}};
  const int64_t width = 16;
  torch::Tensor ids = torch::zeros({2, width}, torch::kLong);
  torch::Tensor segments = torch::zeros({2, width}, torch::kLong);
  std::vector<std::tuple<int64_t, int64_t, torch::Tensor>> placed;
  uint64_t seed = 30;
  for (int64_t r = 0; r < 2; ++r) {
    int64_t offset = 0, segment = 0;
    for (int64_t n : rows_lengths[static_cast<size_t>(r)]) {
      const torch::Tensor seq = RandomIds(1, n, c.vocab_size, ++seed);
      ids[r].narrow(0, offset, n).copy_(seq[0]);
      segments[r].narrow(0, offset, n).fill_(++segment);
      placed.emplace_back(r, offset, seq);
      offset += n;
    }
  }
  const torch::Tensor packed = model->forward(ids, {}, {}, nullptr, segments);
  EXPECT_TRUE(torch::equal(
      TransformerImpl::PositionsFromSegments(segments)[0].narrow(0, 0, 13),
      torch::tensor({0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 0})));
  for (const auto& [r, offset, seq] : placed) {
    const torch::Tensor alone = model->forward(seq)[0];
    const torch::Tensor mine = packed[r].narrow(0, offset, seq.size(1));
    EXPECT_LT((mine - alone).abs().max().item<double>(), 1e-5)
        << GetParam() << " row " << r << " offset " << offset;
  }
  // The first row alone has no padding: the variable-length path (each
  // sequence's causal attention on its own) gives the same logits.
  const torch::Tensor varlen = model->forward(
      ids.narrow(0, 0, 1), {}, {}, nullptr, segments.narrow(0, 0, 1));
  EXPECT_LT((varlen[0] - packed[0]).abs().max().item<double>(), 1e-5)
      << GetParam();
  EXPECT_THROW(model->forward(ids, {}, {}, nullptr, segments.narrow(1, 0, 4)),
               BadRequest);
}

// Activation checkpointing over a packed row (variable-length path) keeps
// the plain backward's gradients.
TEST_P(FamilyTest, CheckpointingAVariableLengthRowGivesTheSameGradients) {
  const ModelConfig c = TinyConfig(GetParam());
  const torch::Tensor ids = RandomIds(1, 15, c.vocab_size, 9);
  const torch::Tensor segments =
      torch::tensor({1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3})
          .view({1, 15});
  std::map<std::string, torch::Tensor> grads[2];
  for (int checkpointing = 0; checkpointing < 2; ++checkpointing) {
    Transformer model = MakeModel(c, 16);
    model->set_activation_checkpointing(checkpointing == 1);
    torch::log_softmax(model->forward(ids, {}, {}, nullptr, segments), -1)
        .select(-1, 2)
        .mean()
        .backward();
    for (const auto& p : model->named_parameters()) {
      grads[checkpointing][p.key()] = p.value().grad().clone();
    }
  }
  for (const auto& [name, plain] : grads[0]) {
    const double diff = (grads[1].at(name) - plain).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6) << GetParam() << " " << name;
  }
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

// Parity with Hugging Face transformers, the reference every checkpoint
// clinrl reads or writes must agree with: tests/policy/reference/hf_models.py
// creates models with transformers' own classes and computes the expected
// logits and greedy tokens with from_pretrained, forward and generate.

// fp32 logits (standard deviation ~1 to ~1.5 after the weight scaling) of
// the same weights through the two implementations differ by up to ~6e-6.
constexpr double kLogitTolerance = 1e-4;
// A greedy step whose top two logits are closer than twice the tolerance
// could flip on a legitimate rounding difference, and the token comparison
// would prove nothing; the seeds below give margins of 0.02 and more.
constexpr double kMinGreedyMargin = 1e-3;
constexpr int64_t kGreedyTokens = 10;
// Ids of the test batch stay below the smallest vocabulary hf_models.py
// creates (qwen2: 300) and TinyConfig's (300).
constexpr int64_t kIdsBelow = 300;

std::string HfScript() {
  return std::string(CLINRL_SOURCE_DIR) +
         "/tests/policy/reference/hf_models.py";
}

// Runs hf_models.py under the venv interpreter; the test fails with the
// command if it exits non-zero (missing packages name themselves).
void RunHfModels(const std::string& args) {
  const std::string cmd =
      fmt::format("{} {} {}", CLINRL_PYTHON, HfScript(), args);
  const int rc = testing::RunShell(cmd);
  ASSERT_EQ(rc, 0) << cmd << "\nexit status " << rc
                   << (rc == 127 ? ": the venv interpreter is missing; "
                                   "launch/setup creates it"
                                 : "");
}

// Three rows of T ids: row 0 all real, row 1 left-padded by 5, row 2
// right-padded by 5. Writes them as input.json for hf_models.py.
struct ParityBatch {
  torch::Tensor ids;                          // [3, T] int64
  torch::Tensor mask;                         // [3, T] int64, 1 = real token
  std::vector<std::vector<int64_t>> prompts;  // real tokens of each row
};

ParityBatch MakeParityBatch(const std::string& path, uint64_t seed) {
  const int64_t T = 14, pad = 5;
  ParityBatch b;
  b.ids = RandomIds(3, T, kIdsBelow, seed);
  b.mask = torch::ones({3, T}, torch::kLong);
  b.mask[1].narrow(0, 0, pad).zero_();
  b.mask[2].narrow(0, T - pad, pad).zero_();
  nlohmann::json input;
  for (int64_t r = 0; r < 3; ++r) {
    std::vector<int64_t> ids(b.ids[r].data_ptr<int64_t>(),
                             b.ids[r].data_ptr<int64_t>() + T);
    std::vector<int64_t> mask(b.mask[r].data_ptr<int64_t>(),
                              b.mask[r].data_ptr<int64_t>() + T);
    std::vector<int64_t> prompt;
    for (int64_t t = 0; t < T; ++t) {
      if (mask[t]) prompt.push_back(ids[t]);
    }
    input["input_ids"].push_back(ids);
    input["attention_mask"].push_back(mask);
    b.prompts.push_back(prompt);
  }
  std::ofstream(path) << input.dump();
  return b;
}

// Compares clinrl's logits and greedy continuation of `batch` with
// hf_models.py's reference file.
void ExpectMatchesReference(Transformer& model, const ParityBatch& batch,
                            const std::string& reference_path,
                            const std::string& what) {
  SafetensorsFile ref(reference_path);
  torch::NoGradGuard no_grad;
  const torch::Tensor got = model->forward(batch.ids, {}, batch.mask);
  const torch::Tensor expected = ref.Get("logits");
  ASSERT_EQ(got.sizes(), expected.sizes()) << what;
  // Padding slots carry no meaning (transformers and clinrl fill them
  // differently), so only real tokens count.
  const torch::Tensor padding =
      batch.mask.logical_not().unsqueeze(-1).expand_as(got);
  const double diff =
      (got - expected).abs().masked_fill(padding, 0).max().item<double>();
  EXPECT_LT(diff, kLogitTolerance) << what;
  std::printf("[ %s ] max |logit - transformers| on real tokens: %.3g\n",
              what.c_str(), diff);

  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = kGreedyTokens;
  const auto outputs = Generate(model, batch.prompts, greedy);
  const torch::Tensor want = ref.Get("greedy_tokens");
  const torch::Tensor margin = ref.Get("greedy_min_margin");
  ASSERT_EQ(want.sizes(), (c10::IntArrayRef{3, kGreedyTokens})) << what;
  for (int64_t r = 0; r < 3; ++r) {
    ASSERT_GT(margin[r].item<double>(), kMinGreedyMargin)
        << what << " row " << r
        << ": a near tie in the reference; pick another seed";
    const std::vector<int64_t> expected_tokens(
        want[r].data_ptr<int64_t>(),
        want[r].data_ptr<int64_t>() + kGreedyTokens);
    EXPECT_EQ(outputs[r].token_ids, expected_tokens) << what << " row " << r;
  }
}

TEST_P(FamilyTest, LoadsTransformersCheckpoint) {
  TempDir dir;
  const ParityBatch batch = MakeParityBatch(dir.path() + "/input.json", 17);
  ASSERT_NO_FATAL_FAILURE(RunHfModels(fmt::format(
      "--create {} --seed 3 --model {}/hf --bf16 {}/hf_bf16 --input "
      "{}/input.json --reference {}/reference.safetensors "
      "--max-new-tokens {}",
      GetParam(), dir.path(), dir.path(), dir.path(), dir.path(),
      kGreedyTokens)));

  // config.json as transformers 5 writes it (rope_parameters, dtype,
  // layer_types) reads into the shape hf_models.py asked for.
  Transformer model = LoadModel(dir.path() + "/hf");
  const ModelConfig& c = model->config();
  if (GetParam() == "qwen3") {
    EXPECT_EQ(c.HeadDim(), 32);
    EXPECT_EQ(c.rope_theta, 1e6);
  }
  if (GetParam() == "llama") {
    EXPECT_EQ(c.rope_theta, 500000.0);
    EXPECT_EQ(c.rope_scaling_factor, 8.0);
    EXPECT_EQ(c.rope_original_max_position, 64);
  }
  EXPECT_EQ(c.tie_word_embeddings, GetParam() == "qwen2");
  ExpectMatchesReference(model, batch, dir.path() + "/reference.safetensors",
                         GetParam() + " saved by transformers");

  // bfloat16 weights written by transformers load as torch rounds them.
  Transformer bf16 = LoadModel(dir.path() + "/hf_bf16");
  EXPECT_EQ(bf16->config().torch_dtype, "bfloat16");
  auto rounded = bf16->named_parameters();
  for (const auto& p : model->named_parameters()) {
    const torch::Tensor want = p.value().to(torch::kBFloat16).to(torch::kFloat);
    EXPECT_TRUE(torch::equal(rounded[p.key()], want)) << p.key();
  }
}

TEST_P(FamilyTest, TransformersLoadsClinrlCheckpoint) {
  Transformer model = MakeModel(TinyConfig(GetParam()), 13);
  {
    // Norms and biases away from their 1 and 0 init, so one that is not
    // saved or not loaded changes the logits.
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(17);
    for (const auto& p : model->named_parameters()) {
      if (p.value().dim() != 1) continue;
      const torch::Tensor noise =
          torch::randn(p.value().sizes(), gen, torch::kFloat);
      const bool norm = p.key().find("norm.weight") != std::string::npos;
      p.value().copy_(norm ? 1 + 0.2 * noise : 0.5 * noise);
    }
  }
  TempDir dir;
  SaveModel(model, dir.path() + "/clinrl");
  const ParityBatch batch = MakeParityBatch(dir.path() + "/input.json", 30);
  ASSERT_NO_FATAL_FAILURE(RunHfModels(
      fmt::format("--model {}/clinrl --input {}/input.json --reference "
                  "{}/reference.safetensors --max-new-tokens {}",
                  dir.path(), dir.path(), dir.path(), kGreedyTokens)));
  ExpectMatchesReference(model, batch, dir.path() + "/reference.safetensors",
                         GetParam() + " saved by clinrl");
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

// configs/qwen2.5-0.5b.json is the real architecture: with Qwen2.5's
// vocabulary it has Qwen2.5-0.5B's 494,032,768 parameters.
TEST(ModelConfigTest, HalfBillionConfigHasQwen25Shape) {
  std::ifstream in(std::string(CLINRL_SOURCE_DIR) +
                   "/configs/qwen2.5-0.5b.json");
  nlohmann::json init = nlohmann::json::parse(in)["policy"]["init"];
  init["vocab_size"] = 151936;
  const ModelConfig c = ModelConfig::FromJson(init, "policy.init");
  EXPECT_EQ(c.ParameterCount(), 494032768);
  EXPECT_EQ(c.HeadDim(), 64);
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

  // Mistral with full attention over 32k positions: what clinrl writes must
  // read back (ranks and resumed runs re-read the written config).
  nlohmann::json mistral = qwen;
  mistral["model_type"] = "mistral";
  mistral["sliding_window"] = nullptr;
  const ModelConfig m = ModelConfig::FromJson(mistral);
  EXPECT_EQ(ModelConfig::FromJson(m.ToJson()).ToJson(), m.ToJson());
}

TEST(ModelConfigTest, ReadsBothRopeSpellingsAndRefusesUnsupportedFields) {
  // Llama 3.1's rotary settings as transformers 4.x and 5.x write them.
  const nlohmann::json v4 = {{"model_type", "llama"},
                             {"hidden_size", 64},
                             {"intermediate_size", 160},
                             {"num_hidden_layers", 2},
                             {"num_attention_heads", 4},
                             {"vocab_size", 300},
                             {"max_position_embeddings", 512},
                             {"torch_dtype", "bfloat16"},
                             {"rope_theta", 500000.0},
                             {"rope_scaling",
                              {{"rope_type", "llama3"},
                               {"factor", 8.0},
                               {"low_freq_factor", 1.0},
                               {"high_freq_factor", 4.0},
                               {"original_max_position_embeddings", 8192}}}};
  nlohmann::json v5 = v4;
  v5.erase("rope_theta");
  v5.erase("rope_scaling");
  v5.erase("torch_dtype");
  v5["dtype"] = "bfloat16";
  v5["rope_parameters"] = v4["rope_scaling"];
  v5["rope_parameters"]["rope_theta"] = 500000.0;
  const ModelConfig a = ModelConfig::FromJson(v4);
  const ModelConfig b = ModelConfig::FromJson(v5);
  EXPECT_EQ(a.ToJson(), b.ToJson());
  EXPECT_EQ(b.rope_theta, 500000.0);
  EXPECT_EQ(b.rope_scaling_factor, 8.0);
  EXPECT_EQ(b.rope_original_max_position, 8192);
  EXPECT_EQ(b.torch_dtype, "bfloat16");
  nlohmann::json nested = v5;
  nested["rope_parameters"] = {{"full_attention", v5["rope_parameters"]}};
  EXPECT_EQ(ModelConfig::FromJson(nested).ToJson(), b.ToJson());
  // Defaults as transformers': Qwen3's head_dim is 128, not hidden / heads.
  nlohmann::json qwen3 = v5;
  qwen3["model_type"] = "qwen3";
  qwen3["num_attention_heads"] = 8;
  EXPECT_EQ(ModelConfig::FromJson(qwen3).HeadDim(), 128);

  // Each unsupported value fails with the key (and the value) in the message.
  auto expect_refused = [](const nlohmann::json& doc, const std::string& key,
                           const std::string& value) {
    try {
      ModelConfig::FromJson(doc);
      ADD_FAILURE() << "accepted " << key << " = " << value;
    } catch (const BadRequest& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(key), std::string::npos) << msg;
      EXPECT_NE(msg.find(value), std::string::npos) << msg;
    }
  };
  nlohmann::json bad = v5;
  bad["rope_parameters"]["rope_type"] = "yarn";
  expect_refused(bad, "rope_parameters.rope_type", "yarn");
  bad = v4;
  bad["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  expect_refused(bad, "rope_scaling.rope_type", "linear");
  bad = v5;
  bad["rope_parameters"]["partial_rotary_factor"] = 0.5;
  expect_refused(bad, "partial_rotary_factor", "0.5");
  bad = nested;
  bad["rope_parameters"]["sliding_attention"] = v5["rope_parameters"];
  expect_refused(bad, "rope_parameters", "sliding_attention");
  bad = v5;
  bad["hidden_act"] = "gelu";
  expect_refused(bad, "hidden_act", "gelu");
  bad = v5;
  bad["mlp_bias"] = true;
  expect_refused(bad, "mlp_bias", "true");
  bad = v5;
  bad["attention_bias"] = true;
  expect_refused(bad, "attention_bias", "o_proj");
  bad = v5;
  bad["dtype"] = "float8_e4m3fn";
  expect_refused(bad, "dtype", "float8_e4m3fn");
  bad = v5;
  bad["model_type"] = "qwen2";
  bad["layer_types"] = {"full_attention", "sliding_attention"};
  expect_refused(bad, "layer_types[1]", "sliding_attention");
  bad.erase("layer_types");
  bad["use_sliding_window"] = true;
  bad["max_window_layers"] = 1;
  expect_refused(bad, "use_sliding_window", "max_window_layers 1");
  bad["sliding_window"] = nullptr;  // transformers: no window at all
  EXPECT_NO_THROW(ModelConfig::FromJson(bad));
  bad = v5;
  bad["model_type"] = "mistral";
  bad["max_position_embeddings"] = 32768;
  expect_refused(bad, "sliding_window", "4096");
  bad["sliding_window"] = nullptr;
  EXPECT_NO_THROW(ModelConfig::FromJson(bad));
}

}  // namespace
}  // namespace clinrl::policy
