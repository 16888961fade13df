#include "rollout/episode_tokens.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "tests/rollout/llama_template_tokenizer.h"

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


// A model folder with its own chat template (Llama 3.2's): the episode's
// tokens before each policy turn are exactly the ids transformers'
// apply_chat_template(..., add_generation_prompt=True, tokenize=True) gives
// for the conversation up to that turn, loading the same folder with
// AutoTokenizer; the sampled ids follow, and the stop ids include the
// template's <|eot_id|>.
TEST(EpisodeTokensTest, ModelsOwnTemplateTokensMatchTransformers) {
  const std::string dir = testing::WriteLlamaTemplateTokenizer(
      ::testing::TempDir() + "/episode_tokens_llama");
  const auto tok = policy::LoadTokenizer(dir);
  const EpisodeTokenizer et(*tok);
  ASSERT_FALSE(et.format().is_builtin());
  const int64_t eot = *tok->TokenId("<|eot_id|>");
  EXPECT_EQ(et.format().EndOfTurnId(), eot);
  const auto stops = et.format().StopIds();
  EXPECT_NE(std::find(stops.begin(), stops.end(), eot), stops.end());

  Trajectory t;
  t.episode_id = "e1";
  t.env = "dx_dialogue";
  t.turns.push_back({"system", "You are a doctor.", {}, {}});
  t.turns.push_back({"user", "I feel dizzy.", {}, {}});
  std::vector<int64_t> first = tok->Encode("ASK: fever");
  first.push_back(eot);
  t.turns.push_back({"assistant", "ASK: fever", first,
                     std::vector<float>(first.size(), -0.5f)});
  t.turns.push_back({"user", "No.", {}, {}});
  const std::vector<int64_t> second = tok->Encode("DIAGNOSIS: R4");
  t.turns.push_back({"assistant", "DIAGNOSIS: R4", second,
                     std::vector<float>(second.size(), -1.0f)});
  const EpisodeTokens e = et.FromTrajectory(t);

  const std::string script = dir + "/reference.py";
  std::ofstream(script) << R"py(import json, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
messages = json.load(open(sys.argv[2]))
for i, m in enumerate(messages):
    if m["role"] != "assistant":
        continue
    out = tok.apply_chat_template(messages[:i], add_generation_prompt=True,
                                  tokenize=True, date_string="26 Jul 2024")
    ids = out["input_ids"] if hasattr(out, "keys") else out
    print(json.dumps(list(ids)))
)py";
  nlohmann::json messages = nlohmann::json::array();
  for (const Turn& turn : t.turns) {
    messages.push_back({{"role", turn.role}, {"content", turn.content}});
  }
  // Through a file: no quoting of the conversation in the shell.
  std::ofstream(dir + "/messages.json") << messages.dump();
  const std::string command =
      fmt::format("'{}' '{}' '{}' '{}' 2>&1", CLINRL_PYTHON, script, dir,
                  dir + "/messages.json");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr) << command;
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  ASSERT_EQ(pclose(pipe), 0) << command << "\n" << output;
  std::istringstream lines(output);
  std::vector<std::vector<int64_t>> prompts;
  for (std::string line; std::getline(lines, line);) {
    prompts.push_back(nlohmann::json::parse(line).get<std::vector<int64_t>>());
  }
  ASSERT_EQ(prompts.size(), 2u) << output;
  // Where each policy turn starts: the first loss-masked token of a run.
  std::vector<size_t> starts;
  for (size_t i = 0; i < e.ids.size(); ++i) {
    if (e.loss_mask[i] && (i == 0 || !e.loss_mask[i - 1])) starts.push_back(i);
  }
  ASSERT_EQ(starts.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    const std::vector<int64_t> before(e.ids.begin(), e.ids.begin() + starts[k]);
    EXPECT_EQ(before, prompts[k]) << "before policy turn " << k << ": "
                                  << tok->Decode(before);
  }
  // The cut second turn is closed with <|eot_id|>, masked.
  EXPECT_EQ(e.ids.back(), eot);
  EXPECT_EQ(e.loss_mask.back(), 0);
}


// A template that closes a turn with text around the end-of-turn token
// (" </s>\n", as Llama 2 writes an answer's end): a sample that stopped on
// </s> is followed by the rest only, "\n", so the sequence holds </s> once;
// a sample cut by length gets the whole close.
TEST(EpisodeTokensTest, ACloseWithTextAroundTheEndOfTurnIsNotRepeated) {
  const auto tok = policy::LoadTokenizer(testing::WriteTemplateTokenizer(
      ::testing::TempDir() + "/episode_tokens_text_close", {"<s>", "</s>"},
      "{% for m in messages %}{{ m.role }}: {{ m.content }}"
      "{% if m.role == 'assistant' %} {{ eos_token }}{% endif %}"
      "{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
      "<s>", "</s>"));
  const EpisodeTokenizer et(*tok);
  const int64_t eos = *tok->TokenId("</s>");
  EXPECT_EQ(et.format().TurnClose(), " </s>\n");
  EXPECT_EQ(et.format().EndOfTurnId(), eos);
  EpisodeTokens stopped;
  std::vector<int64_t> ids = tok->Encode(" yes");
  ids.push_back(eos);
  et.AppendPolicyTurn(ids, std::vector<float>(ids.size(), -1.0f), &stopped);
  EXPECT_EQ(tok->Decode(stopped.ids), " yes</s>\n");
  EpisodeTokens cut;
  ids.pop_back();
  et.AppendPolicyTurn(ids, std::vector<float>(ids.size(), -1.0f), &cut);
  EXPECT_EQ(tok->Decode(cut.ids), " yes </s>\n");
}

}  // namespace
}  // namespace clinrl::rollout
