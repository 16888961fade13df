// The generation engine against full recomputation: sequences that join
// and leave mid-decode, a pool that grows, multi-turn histories that extend
// or rewrite what the cache holds, and prefix sharing that changes no
// token.
#include "policy/generation_engine.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "core/error.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

using testing::TinyConfig;

Transformer MakeModel(const std::string& family) {
  return testing::SharpTinyModel(family);
}

// The largest |sampling-time log-prob - full forward's| over a completion.
double WorstLogProbError(Transformer& model, const std::vector<int64_t>& prompt,
                         const GenerationOutput& out, double temperature) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> seq = prompt;
  seq.insert(seq.end(), out.token_ids.begin(), out.token_ids.end());
  const auto ids =
      torch::tensor(seq, torch::kLong).view({1, (int64_t)seq.size()});
  const auto lp = torch::log_softmax(model->forward(ids)[0] / temperature, -1);
  double worst = 0;
  for (size_t i = 0; i < out.token_ids.size(); ++i) {
    const double want =
        lp[prompt.size() - 1 + i][out.token_ids[i]].item<double>();
    worst = std::max(worst, std::abs(want - out.logprobs[i]));
  }
  return worst;
}

// Steps until every running turn ends; the finished turns by sequence.
std::map<int64_t, GenerationOutput> RunToEnd(GenerationEngine& engine,
                                             int64_t max_steps = 1000) {
  std::map<int64_t, GenerationOutput> done;
  for (int64_t i = 0; i < max_steps && engine.busy(); ++i) {
    for (auto& turn : engine.Step()) done[turn.sequence] = turn.output;
  }
  EXPECT_FALSE(engine.busy());
  return done;
}

std::vector<int64_t> Concat(std::vector<int64_t> a,
                            const std::vector<int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class EngineFamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineFamilyTest, PagedDecodingEqualsFullRecomputation) {
  Transformer model = MakeModel(GetParam());
  EngineOptions options;
  options.block_size = 4;
  options.initial_blocks = 2;  // the pool grows mid-run
  GenerationEngine engine(model, options);
  SamplingParams params;
  params.temperature = 0.9;
  params.max_new_tokens = 12;
  params.seed = 3;
  SamplingParams short_turn = params;
  short_turn.max_new_tokens = 3;
  const std::vector<int64_t> pa = {1, 2, 3, 4, 5};
  const std::vector<int64_t> pb = {10, 20, 30, 40,  50, 60,
                                   70, 80, 90, 100, 110};
  const std::vector<int64_t> pc = {7};
  const int64_t a = engine.Open(3, 0), b = engine.Open(3, 1),
                c = engine.Open(3, 2);
  std::map<int64_t, GenerationOutput> turn1;
  engine.StartTurn(a, pa, params);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(engine.Step().empty());
  // b joins while a decodes (its prefill and a's token share a step), then
  // c, which leaves after 3 tokens while the others go on.
  engine.StartTurn(b, pb, params);
  engine.Step();
  engine.StartTurn(c, pc, short_turn);
  turn1 = RunToEnd(engine);
  ASSERT_EQ(turn1.size(), 3u);
  EXPECT_EQ(turn1[a].token_ids.size(), 12u);
  EXPECT_EQ(turn1[c].token_ids.size(), 3u);
  EXPECT_GT(engine.cache_stats().capacity_blocks, 2);

  // Turn 2: a's history extends turn 1 verbatim; b's rewrites its third
  // generated token (the cache keeps only what still matches).
  const std::vector<int64_t> ha =
      Concat(Concat(pa, turn1[a].token_ids), {250, 251});
  std::vector<int64_t> hb = Concat(pb, turn1[b].token_ids);
  hb[pb.size() + 2] = (hb[pb.size() + 2] + 1) % 300;
  hb.push_back(252);
  const GenerationStats before = engine.stats();
  engine.StartTurn(a, ha, params);
  engine.StartTurn(b, hb, params);
  const auto turn2 = RunToEnd(engine);
  const int64_t kept_a = static_cast<int64_t>(pa.size() + 12) - 1;
  const int64_t kept_b = static_cast<int64_t>(pb.size()) + 2;
  EXPECT_EQ(engine.stats().cached_prompt_tokens - before.cached_prompt_tokens,
            kept_a + kept_b);
  EXPECT_EQ(
      engine.stats().computed_prompt_tokens - before.computed_prompt_tokens,
      static_cast<int64_t>(ha.size() + hb.size()) - kept_a - kept_b);

  double worst = 0;
  worst = std::max(worst, WorstLogProbError(model, pa, turn1[a], 0.9));
  worst = std::max(worst, WorstLogProbError(model, pb, turn1[b], 0.9));
  worst = std::max(worst, WorstLogProbError(model, pc, turn1[c], 0.9));
  worst = std::max(worst, WorstLogProbError(model, ha, turn2.at(a), 0.9));
  worst = std::max(worst, WorstLogProbError(model, hb, turn2.at(b), 0.9));
  EXPECT_LT(worst, 1e-4) << GetParam();
  engine.Close(a);
  engine.Close(b);
  engine.Close(c);
  EXPECT_EQ(engine.cache_stats().blocks_in_use, 0);
}

INSTANTIATE_TEST_SUITE_P(Families, EngineFamilyTest,
                         ::testing::Values("qwen2", "qwen3", "llama"));

// G sequences of one prompt, with and without prefix sharing.
struct GroupRun {
  std::map<int64_t, GenerationOutput> outputs;
  GenerationStats stats;
  PagedKvCacheStats cache;
};

GroupRun RunGroup(Transformer& model, const std::vector<int64_t>& prompt,
                  bool sharing) {
  EngineOptions options;
  options.block_size = 4;
  options.prefix_sharing = sharing;
  GenerationEngine engine(model, options);
  SamplingParams params;
  params.max_new_tokens = 8;
  params.seed = 17;
  for (int g = 0; g < 4; ++g) {
    engine.StartTurn(engine.Open(17, g), prompt, params);
  }
  GroupRun run;
  run.outputs = RunToEnd(engine);
  run.stats = engine.stats();
  run.cache = engine.cache_stats();
  return run;
}

TEST(GenerationEngineTest, PrefixSharingGivesTheSameTokens) {
  Transformer model = MakeModel("qwen2");
  // 18 tokens: 4 full blocks shared, the last 2 tokens computed by each.
  // 16 tokens: every block shared; each copy computes the last token again
  // (for its logits), which writes into the shared last block: a copy.
  for (int64_t length : {18, 16}) {
    SCOPED_TRACE(length);
    std::vector<int64_t> prompt;
    for (int64_t t = 0; t < length; ++t) prompt.push_back(3 + 7 * t % 290);
    const GroupRun shared = RunGroup(model, prompt, true);
    const GroupRun alone = RunGroup(model, prompt, false);
    ASSERT_EQ(shared.outputs.size(), 4u);
    for (int64_t g = 0; g < 4; ++g) {
      EXPECT_EQ(shared.outputs.at(g).token_ids, alone.outputs.at(g).token_ids);
      for (size_t i = 0; i < alone.outputs.at(g).logprobs.size(); ++i) {
        EXPECT_NEAR(shared.outputs.at(g).logprobs[i],
                    alone.outputs.at(g).logprobs[i], 1e-5);
      }
    }
    const int64_t adopted = length == 18 ? 16 : 15;
    EXPECT_EQ(shared.stats.shared_prompt_tokens, 3 * adopted);
    EXPECT_EQ(shared.stats.computed_prompt_tokens,
              length + 3 * (length - adopted));
    EXPECT_EQ(alone.stats.computed_prompt_tokens, 4 * length);
    EXPECT_EQ(shared.cache.copied_blocks, length == 16 ? 3 : 0);
    EXPECT_LT(shared.cache.peak_blocks_in_use, alone.cache.peak_blocks_in_use);
  }
}

TEST(GenerationEngineTest, BadTurnsAreNamed) {
  Transformer model = MakeModel("qwen2");
  GenerationEngine engine(model);
  const int64_t s = engine.Open(1, 0);
  SamplingParams params;
  EXPECT_THROW(engine.StartTurn(s, {}, params), BadRequest);
  try {
    engine.StartTurn(s, {1, 300}, params);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("tokens: token id 300"),
              std::string::npos)
        << e.what();
  }
  params.stop_strings = {"x"};
  EXPECT_THROW(engine.StartTurn(s, {1}, params), BadRequest);
}

}  // namespace
}  // namespace clinrl::policy
