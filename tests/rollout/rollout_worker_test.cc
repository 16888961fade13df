#include "rollout/rollout_worker.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "envs/env_pool.h"
#include "policy/transformer.h"
#include "rewards/composite_reward.h"
#include "tests/rollout/llama_template_tokenizer.h"

namespace clinrl::rollout {
namespace {

policy::Transformer TinyModel(const policy::Tokenizer& tok,
                              int64_t max_positions = 2048) {
  policy::ModelConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = tok.size();
  c.max_position_embeddings = max_positions;
  policy::Transformer model{policy::TransformerOptions(c)};
  model->ResetParameters(3);
  model->eval();
  return model;
}

class RolloutWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    envs::EnvPoolOptions o;
    o.service.envs = {"echo"};
    o.service.env_options["echo"] = {{"max_turns", 3}};
    o.workers = 2;
    pool_ = std::make_unique<envs::EnvPool>(o);
    tokenizer_ = policy::LoadTokenizer("byte");
    model_ = TinyModel(*tokenizer_);
  }

  std::vector<RolloutEpisode> Play(uint64_t seed, RolloutStats* stats = nullptr,
                                   bool continuous = false) {
    RolloutOptions ro;
    ro.continuous = continuous;
    ro.group_size = 3;
    ro.max_turns = 5;
    ro.max_tokens_per_turn = 6;
    ro.max_tokens_per_episode = 400;
    RolloutWorker worker(model_, *tokenizer_, pool_->client(), ro);
    return worker.Run({{"echo", "train", 4, {}}, {"echo", "train", 9, {}}},
                      seed,
                      /*policy_version=*/7, stats);
  }

  std::unique_ptr<envs::EnvPool> pool_;
  std::unique_ptr<policy::Tokenizer> tokenizer_;
  policy::Transformer model_{nullptr};
};

TEST_F(RolloutWorkerTest, PlaysGroupsAndKeepsSampledTokens) {
  RolloutStats stats;
  const auto episodes = Play(11, &stats);
  ASSERT_EQ(episodes.size(), 6u);
  EXPECT_EQ(stats.episodes, 6);
  EXPECT_GT(stats.generated_tokens, 0);
  const EpisodeTokenizer et(*tokenizer_);
  for (size_t i = 0; i < episodes.size(); ++i) {
    const Trajectory& t = episodes[i].trajectory;
    SCOPED_TRACE(t.episode_id);
    EXPECT_EQ(t.group_id, i < 3 ? "11-0" : "11-1");
    EXPECT_EQ(t.task_index, i < 3 ? 4 : 9);
    EXPECT_EQ(t.policy_version, 7);
    int policy_turns = 0;
    for (const Turn& turn : t.turns) {
      if (turn.role != kPolicyRole) continue;
      ++policy_turns;
      EXPECT_FALSE(turn.token_ids.empty());
      EXPECT_EQ(turn.token_ids.size(), turn.logprobs.size());
      EXPECT_LE(turn.token_ids.size(), 6u);
    }
    // Echo truncates after 3 turns unless the random policy hit the word.
    EXPECT_GE(policy_turns, 1);
    EXPECT_LE(policy_turns, 3);
    EXPECT_EQ(t.step_rewards.size(), static_cast<size_t>(policy_turns));
    // The live token sequence is exactly what the learner rebuilds.
    const EpisodeTokens rebuilt = et.FromTrajectory(t);
    EXPECT_EQ(rebuilt.ids, episodes[i].tokens.ids);
    EXPECT_EQ(rebuilt.loss_mask, episodes[i].tokens.loss_mask);
    EXPECT_EQ(rebuilt.logprobs, episodes[i].tokens.logprobs);
  }
}

TEST_F(RolloutWorkerTest, SameSeedSameEpisodesOtherSeedOthers) {
  const auto a = Play(5);
  const auto b = Play(5);
  const auto c = Play(6);
  ASSERT_EQ(a.size(), b.size());
  bool any_different = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens.ids, b[i].tokens.ids);
    EXPECT_EQ(a[i].tokens.logprobs, b[i].tokens.logprobs);
    any_different |= a[i].tokens.ids != c[i].tokens.ids;
  }
  EXPECT_TRUE(any_different);
}

TEST_F(RolloutWorkerTest, SamplingLogProbsMatchTheLearnersForwardPass) {
  const auto episodes = Play(21);
  for (const auto& e : episodes) {
    const auto& ids = e.tokens.ids;
    const torch::Tensor input = torch::tensor(ids).unsqueeze(0);
    torch::NoGradGuard no_grad;
    const torch::Tensor logp = policy::SequenceLogProbs(model_, input)[0];
    for (size_t t = 1; t < ids.size(); ++t) {
      if (!e.tokens.loss_mask[t]) continue;
      EXPECT_NEAR(logp[t - 1].item<float>(), e.tokens.logprobs[t], 1e-4)
          << e.trajectory.episode_id << " position " << t;
    }
  }
}

// The continuous schedule: episodes join and leave the engine's steps as
// the env replies, and every episode is still exactly what the learner
// rebuilds, with sampling-time log-probs equal to its forward pass; the
// group's shared prompt is computed once.
TEST_F(RolloutWorkerTest, ContinuousScheduleKeepsEpisodesExact) {
  RolloutStats stats;
  const auto episodes = Play(11, &stats, /*continuous=*/true);
  ASSERT_EQ(episodes.size(), 6u);
  EXPECT_GT(stats.generated_tokens, 0);
  EXPECT_GT(stats.cached_prompt_tokens, 0);
  const EpisodeTokenizer et(*tokenizer_);
  for (const auto& e : episodes) {
    SCOPED_TRACE(e.trajectory.episode_id);
    EXPECT_GE(e.trajectory.step_rewards.size(), 1u);
    const EpisodeTokens rebuilt = et.FromTrajectory(e.trajectory);
    EXPECT_EQ(rebuilt.ids, e.tokens.ids);
    EXPECT_EQ(rebuilt.logprobs, e.tokens.logprobs);
    const auto& ids = e.tokens.ids;
    torch::NoGradGuard no_grad;
    const torch::Tensor logp =
        policy::SequenceLogProbs(model_, torch::tensor(ids).unsqueeze(0))[0];
    for (size_t t = 1; t < ids.size(); ++t) {
      if (!e.tokens.loss_mask[t]) continue;
      EXPECT_NEAR(logp[t - 1].item<float>(), e.tokens.logprobs[t], 1e-4)
          << "position " << t;
    }
  }
}

// Scores every episode against its reward spec, as the learner does, and
// expects no flagged (failed) component.
void ExpectScoredUnflagged(const std::vector<RolloutEpisode>& episodes) {
  for (const RolloutEpisode& e : episodes) {
    const Trajectory& t = e.trajectory;
    const RewardResult r = rewards::ScoreTrajectory(t);
    EXPECT_FALSE(rewards::IsFlagged(r))
        << t.episode_id << ": " << rewards::ComponentErrors(r).dump();
  }
}

// A long-winded policy: the rollout's budgets, not the env's, end every
// episode, and the env still closes each one with its final info.
TEST_F(RolloutWorkerTest, EpisodesCutByTheTurnBudgetCarryTheEnvsFinalInfo) {
  RolloutOptions ro;
  ro.group_size = 2;
  ro.max_turns = 1;  // echo's own budget is 3 turns
  ro.max_tokens_per_turn = 4;
  RolloutWorker worker(model_, *tokenizer_, pool_->client(), ro);
  const auto episodes = worker.Run({{"echo", "train", 2, {}}}, 3, 0);
  ASSERT_EQ(episodes.size(), 2u);
  for (const RolloutEpisode& e : episodes) {
    const Trajectory& t = e.trajectory;
    SCOPED_TRACE(t.episode_id);
    EXPECT_EQ(t.termination, Termination::kMaxTurns);
    ASSERT_TRUE(t.info.contains("metrics")) << t.info.dump();
    EXPECT_EQ(t.info["metrics"]["correct"], 0.0);
    EXPECT_EQ(t.step_rewards.size(), 1u);
  }
  ExpectScoredUnflagged(episodes);
  EXPECT_EQ(pool_->client().Health()["sessions"], 0) << "cut sessions closed";
}

TEST_F(RolloutWorkerTest, APromptThatFillsTheBudgetIsAnErrorNamingIt) {
  RolloutOptions ro;
  ro.group_size = 2;
  ro.max_tokens_per_episode = 20;  // echo's prompt is longer in byte tokens
  RolloutWorker worker(model_, *tokenizer_, pool_->client(), ro);
  try {
    worker.Run({{"echo", "train", 1, {}}}, 3, 0);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("rollout.max_tokens_per_episode: got 20, but the "
                         "reset prompt of env 'echo' (train task 1) is ",
                         0),
              0)
        << what;
    EXPECT_NE(what.find("no room for a policy turn"), std::string::npos)
        << what;
  }
}

// A model whose folder has its own chat template (Llama 3.2's) plays
// dx_dialogue under that template: its prompt opens with Llama's header
// tokens, not ChatML, the turns it ends stop on <|eot_id|>, and the live
// sequence equals the learner's rebuild from the record.
TEST(RolloutWorkerChatFormat, EpisodesUseTheModelsOwnTemplate) {
  envs::EnvPoolOptions o;
  o.service.envs = {"dx_dialogue"};
  o.workers = 2;
  envs::EnvPool pool(o);
  const auto tokenizer = policy::LoadTokenizer(testing::WriteLlamaTemplateTokenizer(
      ::testing::TempDir() + "/rollout_worker_llama"));
  RolloutOptions ro;
  ro.group_size = 2;
  ro.max_turns = 3;
  ro.max_tokens_per_turn = 12;
  ro.max_tokens_per_episode = 3000;
  // A model that ends its turns: every embedding shares a positive first
  // coordinate, which survives to the final norm, and <|eot_id|>'s head
  // row weighs it 50 times more than any other row does.
  policy::Transformer model = TinyModel(*tokenizer);
  const int64_t eot = *tokenizer->TokenId("<|eot_id|>");
  {
    torch::NoGradGuard no_grad;
    torch::Tensor embedding = model->model->embed_tokens->weight;
    embedding.index({torch::indexing::Slice(), 0}).fill_(1.0);
    torch::Tensor head =
        model->lm_head ? model->lm_head->weight : embedding;
    head.index({eot, 0}).fill_(50.0);
  }
  RolloutWorker worker(model, *tokenizer, pool.client(), ro);
  const auto episodes = worker.Run({{"dx_dialogue", "train", 1, {}}}, 5, 0);
  ASSERT_EQ(episodes.size(), 2u);
  const EpisodeTokenizer learner(*tokenizer);
  const std::vector<int64_t> opening =
      tokenizer->Encode("<|begin_of_text|><|start_header_id|>system<|end_header_id|>");
  int64_t stopped_on_eot = 0;
  for (const RolloutEpisode& e : episodes) {
    SCOPED_TRACE(e.trajectory.episode_id);
    ASSERT_GE(e.tokens.ids.size(), opening.size());
    EXPECT_TRUE(std::equal(opening.begin(), opening.end(), e.tokens.ids.begin()))
        << tokenizer->Decode(e.tokens.ids).substr(0, 80);
    EXPECT_EQ(tokenizer->Decode(e.tokens.ids).find("<|im_start|>"),
              std::string::npos);
    EXPECT_EQ(e.tokens.ids, learner.FromTrajectory(e.trajectory).ids);
    EXPECT_EQ(e.tokens.loss_mask, learner.FromTrajectory(e.trajectory).loss_mask);
    for (const Turn& turn : e.trajectory.turns) {
      if (turn.role == kPolicyRole && !turn.token_ids.empty() &&
          turn.token_ids.back() == eot) {
        ++stopped_on_eot;
      }
    }
  }
  EXPECT_GT(stopped_on_eot, 0) << "no turn ended on <|eot_id|>";
}

TEST(RolloutWorkerTokenBudget, CutDxDialogueEpisodesAreScoredNotFlagged) {
  envs::EnvPoolOptions o;
  o.service.envs = {"dx_dialogue"};
  o.workers = 2;
  envs::EnvPool pool(o);
  auto tokenizer = policy::LoadTokenizer("byte");
  RolloutOptions ro;
  ro.group_size = 3;
  ro.max_tokens_per_turn = 16;
  // Byte tokens: the reset prompt is a few hundred, each exchange with the
  // env's reply to an invalid action about 170, so the budget ends every
  // episode after one or two actions, long before the env's 10 turns.
  ro.max_tokens_per_episode = 600;
  RolloutWorker worker(TinyModel(*tokenizer), *tokenizer, pool.client(), ro);
  const auto episodes = worker.Run(
      {{"dx_dialogue", "train", 0, {}}, {"dx_dialogue", "train", 5, {}}}, 17,
      0);
  ASSERT_EQ(episodes.size(), 6u);
  for (const RolloutEpisode& e : episodes) {
    const Trajectory& t = e.trajectory;
    SCOPED_TRACE(t.episode_id);
    EXPECT_EQ(t.termination, Termination::kMaxTokens);
    // The sequence the learner trains on ends with the last policy turn:
    // the env reply that overflowed the budget is not in it (within the
    // budget but for the end of turn and newline that close a turn cut
    // short), and it equals the learner's rebuild from the record.
    EXPECT_LE(static_cast<int64_t>(e.tokens.size()),
              ro.max_tokens_per_episode + 2);
    EXPECT_EQ(e.tokens.ids, EpisodeTokenizer(*tokenizer).FromTrajectory(t).ids);
    EXPECT_EQ(e.tokens.loss_mask,
              EpisodeTokenizer(*tokenizer).FromTrajectory(t).loss_mask);
    // The env's truncation info: metrics with the cost so far, the final
    // reward spec, and no answer, so not correct.
    ASSERT_TRUE(t.info.contains("metrics")) << t.info.dump();
    EXPECT_EQ(t.info["metrics"]["correct"], 0);
    EXPECT_TRUE(t.info["metrics"]["cost"].is_number());
    EXPECT_TRUE(t.info["reward_spec"].contains("components"));
  }
  ExpectScoredUnflagged(episodes);
  EXPECT_EQ(pool.client().Health()["sessions"], 0) << "cut sessions closed";
}

// An env in tools mode: the worker learns the tools from the env's spec and
// renders them into each episode's system turn, as the learner's rebuild
// from the record does with the same table; env replies come back as tool
// results.
TEST(RolloutWorkerTools, TheEnvsSpecToolsAreInThePrompt) {
  envs::EnvPoolOptions o;
  o.service.envs = {"dx_dialogue"};
  o.service.env_options["dx_dialogue"] = {{"action_mode", "tools"}};
  o.workers = 2;
  envs::EnvPool pool(o);
  const nlohmann::json tools = pool.client().Spec("dx_dialogue").tools;
  ASSERT_EQ(tools.size(), 5u);
  auto tokenizer = policy::LoadTokenizer("byte");
  RolloutOptions ro;
  ro.group_size = 2;
  ro.max_turns = 2;
  ro.max_tokens_per_turn = 8;
  ro.max_tokens_per_episode = 4000;
  // Byte tokens: the tools alone are about 2000.
  RolloutWorker worker(TinyModel(*tokenizer, 8192), *tokenizer, pool.client(),
                       ro);
  const auto episodes =
      worker.Run({{"dx_dialogue", "train", 3, {}}}, /*batch_seed=*/5, 0);
  ASSERT_EQ(episodes.size(), 2u);
  const EpisodeTokenizer learner(*tokenizer, {{"dx_dialogue", tools}});
  for (const RolloutEpisode& e : episodes) {
    const std::string text = tokenizer->Decode(e.tokens.ids);
    EXPECT_NE(text.find("# Tools"), std::string::npos);
    EXPECT_NE(text.find("\"name\": \"set_disposition\""), std::string::npos);
    // The model's random bytes are no tool call: the env says so as a tool.
    EXPECT_NE(text.find("<|im_start|>user\n<tool_response>\nInvalid tool "
                        "call"),
              std::string::npos)
        << text;
    EXPECT_EQ(e.tokens.ids, learner.FromTrajectory(e.trajectory).ids);
    EXPECT_EQ(e.tokens.loss_mask,
              learner.FromTrajectory(e.trajectory).loss_mask);
  }
}

}  // namespace
}  // namespace clinrl::rollout
