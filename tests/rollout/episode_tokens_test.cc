#include "rollout/episode_tokens.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace clinrl::rollout {
namespace {

Trajectory TwoTurnEpisode(const policy::Tokenizer& tok) {
  Trajectory t;
  t.episode_id = "e1";
  t.env = "dx_dialogue";
  t.turns.push_back({"system", "You are a doctor.", {}, {}});
  t.turns.push_back({"user", "I feel dizzy.", {}, {}});
  // A sampled turn that ended on end-of-turn, and one cut by max tokens.
  std::vector<int64_t> first = tok.Encode("ASK: fever");
  first.push_back(tok.EndOfTurnId());
  t.turns.push_back({"assistant", "ASK: fever", first,
                     std::vector<float>(first.size(), -0.5f)});
  t.turns.push_back({"user", "No.", {}, {}});
  const std::vector<int64_t> second = tok.Encode("DIAGNOSIS: R4");
  t.turns.push_back({"assistant", "DIAGNOSIS: R4", second,
                     std::vector<float>(second.size(), -1.0f)});
  t.turns.push_back({"user", "Episode over.", {}, {}});
  return t;
}

TEST(EpisodeTokensTest, LayoutMatchesChatTemplateAndMasksEnvTokens) {
  const auto tok = policy::LoadTokenizer("byte");
  const EpisodeTokenizer et(*tok);
  const Trajectory t = TwoTurnEpisode(*tok);
  const EpisodeTokens e = et.FromTrajectory(t);
  ASSERT_EQ(e.ids.size(), e.loss_mask.size());
  ASSERT_EQ(e.ids.size(), e.logprobs.size());
  // The decoded sequence is the ChatML transcript up to the last policy turn.
  const std::string expected =
      tok->ApplyChatTemplate({{"system", "You are a doctor."},
                              {"user", "I feel dizzy."},
                              {"assistant", "ASK: fever"},
                              {"user", "No."},
                              {"assistant", "DIAGNOSIS: R4"}},
                             false);
  EXPECT_EQ(tok->Decode(e.ids), expected);
  // Loss only on the sampled ids: both policy turns, with their log-probs.
  const int64_t sampled = static_cast<int64_t>(t.turns[2].token_ids.size() +
                                               t.turns[4].token_ids.size());
  EXPECT_EQ(e.policy_tokens(), sampled);
  std::vector<int64_t> trained;
  for (size_t i = 0; i < e.ids.size(); ++i) {
    if (e.loss_mask[i]) {
      trained.push_back(e.ids[i]);
      EXPECT_LT(e.logprobs[i], 0.0f);
    } else {
      EXPECT_EQ(e.logprobs[i], 0.0f);
    }
  }
  std::vector<int64_t> want = t.turns[2].token_ids;
  want.insert(want.end(), t.turns[4].token_ids.begin(),
              t.turns[4].token_ids.end());
  EXPECT_EQ(trained, want);
}

TEST(EpisodeTokensTest, IncrementalBuildEqualsRebuildFromRecord) {
  const auto tok = policy::LoadTokenizer("byte");
  const EpisodeTokenizer et(*tok);
  const Trajectory t = TwoTurnEpisode(*tok);
  EpisodeTokens live;
  et.AppendMessages({t.turns[0], t.turns[1]}, &live);
  et.AppendPolicyTurn(t.turns[2].token_ids, t.turns[2].logprobs, &live);
  et.AppendMessages({t.turns[3]}, &live);
  et.AppendPolicyTurn(t.turns[4].token_ids, t.turns[4].logprobs, &live);
  const EpisodeTokens rebuilt = et.FromTrajectory(t);
  EXPECT_EQ(live.ids, rebuilt.ids);
  EXPECT_EQ(live.loss_mask, rebuilt.loss_mask);
  EXPECT_EQ(live.logprobs, rebuilt.logprobs);
}

TEST(EpisodeTokensTest, DemonstrationTrainsTextAndEndOfTurn) {
  const auto tok = policy::LoadTokenizer("byte");
  const EpisodeTokenizer et(*tok);
  Trajectory t;
  t.episode_id = "demo";
  t.turns = {{"user", "Hi", {}, {}}, {"assistant", "ASK: pain", {}, {}}};
  const EpisodeTokens e = et.FromDemonstration(t);
  std::vector<int64_t> trained;
  for (size_t i = 0; i < e.ids.size(); ++i) {
    if (e.loss_mask[i]) trained.push_back(e.ids[i]);
  }
  std::vector<int64_t> want = tok->Encode("ASK: pain");
  want.push_back(tok->EndOfTurnId());
  EXPECT_EQ(trained, want);
}

TEST(EpisodeTokensTest, PolicyTurnWithoutIdsIsRefused) {
  const auto tok = policy::LoadTokenizer("byte");
  const EpisodeTokenizer et(*tok);
  Trajectory t;
  t.episode_id = "bad";
  t.turns = {{"user", "Hi", {}, {}}, {"assistant", "ASK: pain", {}, {}}};
  EXPECT_THROW(et.FromTrajectory(t), BadRequest);
  EpisodeTokens e;
  EXPECT_THROW(et.AppendPolicyTurn({1, 2}, {0.0f}, &e), BadRequest);
}

TEST(EpisodeTokensTest, TheTrajectoryEnvsToolsAreRendered) {
  const auto tok = policy::LoadTokenizer("byte");
  const nlohmann::json tools = nlohmann::json::parse(
      R"([{"type": "function", "function": {"name": "ask", "parameters":
          {"type": "object", "properties": {"question": {"type": "string"}},
           "required": ["question"]}}}])");
  const EpisodeTokenizer et(*tok, {{"dx_dialogue", tools}});
  Trajectory t;
  t.episode_id = "tools";
  t.env = "dx_dialogue";
  const std::string call =
      "<tool_call>\n{\"name\": \"ask\", \"arguments\": {\"question\": "
      "\"fever\"}}\n</tool_call>";
  std::vector<int64_t> sampled = tok->Encode(call);
  sampled.push_back(tok->EndOfTurnId());
  t.turns = {
      {"system", "You are a doctor.", {}, {}},
      {"user", "I feel dizzy.", {}, {}},
      {"assistant", call, sampled, std::vector<float>(sampled.size(), -0.5f)},
      {"tool", "No fever.", {}, {}},
      {"assistant", call, sampled, std::vector<float>(sampled.size(), -0.5f)}};
  // The whole conversation as the chat template renders it with the tools:
  // the tools once in the system turn, tool results as <tool_response>.
  const std::string expected =
      tok->ApplyChatTemplate({{"system", "You are a doctor."},
                              {"user", "I feel dizzy."},
                              {"assistant", call},
                              {"tool", "No fever."},
                              {"assistant", call}},
                             false, tools);
  EXPECT_EQ(tok->Decode(et.FromTrajectory(t).ids), expected);
  EXPECT_NE(expected.find("<tool_response>\nNo fever.\n</tool_response>"),
            std::string::npos);
  // Demonstrations are rendered the same way; another env gets no tools.
  EXPECT_EQ(tok->Decode(et.FromDemonstration(t).ids), expected);
  t.env = "echo";
  EXPECT_EQ(tok->Decode(et.FromTrajectory(t).ids).find("# Tools"),
            std::string::npos);
  EXPECT_EQ(et.ToolsOf("echo"), nlohmann::json::array());
}

}  // namespace
}  // namespace clinrl::rollout
