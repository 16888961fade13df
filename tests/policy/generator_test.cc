// Batched generation: sampling-time log-probs equal a full forward over the
// same tokens, seeds repeat, stops and lengths end sequences, a sequence's
// tokens do not depend on the batch it shares. Multi-turn reuse of keys and
// values is the engine's (generation_engine_test.cc).
#include "policy/generator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "policy/tokenizer.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

using testing::TinyConfig;

Transformer MakeModel(const std::string& family) {
  return testing::SharpTinyModel(family);
}

std::vector<std::vector<int64_t>> Prompts() {
  return {{1, 2, 3, 4, 5},
          {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110},
          {7},
          {200, 201, 202, 203, 204, 205, 206, 207}};
}

// log p of each generated token given everything before it, from one full
// forward pass over prompt + completion.
std::vector<float> FullForwardLogProbs(Transformer& model,
                                       const std::vector<int64_t>& prompt,
                                       const std::vector<int64_t>& completion,
                                       double temperature) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> seq = prompt;
  seq.insert(seq.end(), completion.begin(), completion.end());
  const auto ids =
      torch::tensor(seq, torch::kLong).view({1, (int64_t)seq.size()});
  const auto lp = torch::log_softmax(model->forward(ids)[0] / temperature, -1);
  std::vector<float> out;
  for (size_t i = 0; i < completion.size(); ++i) {
    out.push_back(lp[prompt.size() - 1 + i][completion[i]].item<float>());
  }
  return out;
}

class GenerateFamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerateFamilyTest, SampledLogProbsEqualFullForward) {
  Transformer model = MakeModel(GetParam());
  SamplingParams params;
  params.temperature = 0.8;
  params.max_new_tokens = 20;
  params.seed = 3;
  auto first = Generate(model, Prompts(), params);
  // Stop row 1 early on a token it samples, so the batch shrinks mid-way and
  // the remaining rows run on a compacted cache.
  params.stop_token_ids = {first[1].token_ids[4]};
  GenerationStats stats;
  const auto outputs = Generate(model, Prompts(), params, nullptr, &stats);
  EXPECT_EQ(outputs[1].finish_reason, FinishReason::kStopToken);
  EXPECT_LE(outputs[1].token_ids.size(), 5u);
  EXPECT_LT(stats.decode_row_steps, 4 * stats.decode_steps);
  double worst = 0;
  for (size_t b = 0; b < outputs.size(); ++b) {
    const auto& o = outputs[b];
    ASSERT_EQ(o.token_ids.size(), o.logprobs.size());
    const auto want = FullForwardLogProbs(model, Prompts()[b], o.token_ids,
                                          params.temperature);
    for (size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::abs((double)want[i] - o.logprobs[i]));
    }
    // Until its own stop, each row samples what it sampled without stops.
    for (size_t i = 0; i < o.token_ids.size(); ++i) {
      EXPECT_EQ(o.token_ids[i], first[b].token_ids[i]) << b << " " << i;
    }
  }
  EXPECT_LT(worst, 1e-4) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Families, GenerateFamilyTest,
                         ::testing::Values("qwen2", "qwen3", "llama"));

TEST(GenerateTest, SameSeedRepeatsAndSeedsDiffer) {
  Transformer model = MakeModel("qwen2");
  SamplingParams params;
  params.max_new_tokens = 16;
  params.top_p = 0.9;
  params.top_k = 50;
  params.seed = 42;
  const auto a = Generate(model, Prompts(), params);
  const auto b = Generate(model, Prompts(), params);
  params.seed = 43;
  const auto c = Generate(model, Prompts(), params);
  bool any_differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].token_ids, b[i].token_ids);
    EXPECT_EQ(a[i].logprobs, b[i].logprobs);
    any_differs |= a[i].token_ids != c[i].token_ids;
  }
  EXPECT_TRUE(any_differs);
}

TEST(GenerateTest, SequenceDoesNotDependOnItsBatch) {
  Transformer model = MakeModel("qwen2");
  SamplingParams params;
  params.max_new_tokens = 12;
  params.seed = 5;
  const auto batch = Generate(model, Prompts(), params);
  const auto alone = Generate(model, {Prompts()[0]}, params);
  EXPECT_EQ(batch[0].token_ids, alone[0].token_ids);
  for (size_t i = 0; i < alone[0].logprobs.size(); ++i) {
    EXPECT_NEAR(batch[0].logprobs[i], alone[0].logprobs[i], 1e-4);
  }
}

TEST(GenerateTest, MaxNewTokensAndGreedy) {
  Transformer model = MakeModel("llama");
  SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = 7;
  const auto out = Generate(model, Prompts(), params);
  for (size_t b = 0; b < out.size(); ++b) {
    EXPECT_EQ(out[b].token_ids.size(), 7u);
    EXPECT_EQ(out[b].finish_reason, FinishReason::kLength);
    // Greedy: each token is the argmax of the full forward.
    std::vector<int64_t> seq = Prompts()[b];
    torch::NoGradGuard no_grad;
    for (int64_t tok : out[b].token_ids) {
      const auto ids =
          torch::tensor(seq, torch::kLong).view({1, (int64_t)seq.size()});
      EXPECT_EQ(model->forward(ids)[0][seq.size() - 1].argmax().item<int64_t>(),
                tok);
      seq.push_back(tok);
    }
  }
}

TEST(GenerateTest, StopStringEndsAtFirstOccurrence) {
  Transformer model = MakeModel("qwen2");
  const auto tokenizer = LoadTokenizer("byte");
  SamplingParams params;
  params.max_new_tokens = 24;
  params.seed = 9;
  params.temperature = 1.0;
  const auto free_run = Generate(model, Prompts(), params, tokenizer.get());
  // A stop string made of the bytes of row 2's tokens 5 and 6.
  std::string stop;
  for (int i = 5; i < 7; ++i) {
    const int64_t id = free_run[2].token_ids[i];
    stop += id < tokenizer->size() ? tokenizer->TokenBytes(id) : "";
  }
  ASSERT_FALSE(stop.empty());
  params.stop_strings = {stop};
  const auto out = Generate(model, Prompts(), params, tokenizer.get());
  EXPECT_EQ(out[2].finish_reason, FinishReason::kStopString);
  auto text = [&](const std::vector<int64_t>& ids, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      if (ids[i] < tokenizer->size()) s += tokenizer->TokenBytes(ids[i]);
    }
    return s;
  };
  for (const auto& o : out) {
    if (o.finish_reason != FinishReason::kStopString) continue;
    EXPECT_NE(text(o.token_ids, o.token_ids.size()).find(stop),
              std::string::npos);
    EXPECT_EQ(text(o.token_ids, o.token_ids.size() - 1).find(stop),
              std::string::npos);
  }
}

TEST(GenerateTest, BadPromptsAreNamed) {
  Transformer model = MakeModel("qwen2");
  SamplingParams params;
  try {
    Generate(model, {{1, 2}, {}}, params);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("prompts[1]"), std::string::npos);
  }
  try {
    Generate(model, {{1, 100000}}, params);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("100000"), std::string::npos);
  }
  try {
    Generate(model, {{1, 2}, std::vector<int64_t>(512, 3)}, params);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("prompts[1]: 512 tokens leave no "
                                         "room under max_position_embeddings"),
              std::string::npos)
        << e.what();
  }
  params.top_p = 0;
  try {
    Generate(model, {{1}}, params);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos);
  }
}

}  // namespace
}  // namespace clinrl::policy
