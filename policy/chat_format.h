// How a conversation becomes the text a policy reads and continues: the
// model's own chat template (the tokenizer folder's chat_template.jinja or
// tokenizer_config.json `chat_template`, as transformers loads it) when it
// has one, else clinrl's built-in ChatML with Qwen2.5's tools block
// (Tokenizer::ApplyChatTemplate). A Llama checkpoint is prompted as Llama
// was trained, a Qwen one as Qwen, and so on.
//
// Two uses:
//   Prompt: a whole conversation with the assistant turn opened, as
//     transformers' apply_chat_template(..., add_generation_prompt=True)
//     renders it (`clinrl serve`, `clinrl generate --chat`).
//   Episodes (rollout/episode_tokens.h): an episode is built turn by turn
//     from the policy's sampled token ids, never from re-rendered text, so
//     the text between two policy turns is rendered on its own: Opening
//     (the first messages and the generation prompt), the sampled ids,
//     TurnClose (what the template writes after an assistant's content),
//     then Continuation (the next messages and the generation prompt).
//     Continuation renders the new messages after a short base conversation
//     (a user turn and an assistant turn, with a system turn first for
//     templates that need one; chosen once, when the format is made) and
//     keeps what follows the base's assistant turn, the way verl and
//     SGLang's multi-turn rollouts render tool replies. For every template
//     whose rendering of a conversation extends the rendering of its prefix
//     (Qwen2.5, Llama 3.x, Gemma 2, Phi-3.5, and Qwen3 while the policy's
//     turns carry no reasoning; checked against transformers in
//     tests/policy/chat_format_test.cc), the segments concatenate to
//     exactly what apply_chat_template renders before each policy turn. A
//     template that rewrites earlier turns (Mistral's system prompt rides on
//     the last user turn; Qwen3 drops the reasoning of earlier turns) cannot
//     be extended that way; its episodes keep every earlier turn as it was
//     when the policy sampled the next one.
//
// Episode rendering pins `date_string` (to Llama 3.1's own default, "26 Jul
// 2024") unless the tokenizer sets it: the rollout worker and the learner
// render the same episode at different times, and must get the same text.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "policy/chat_template.h"
#include "policy/tokenizer.h"

namespace clinrl::policy {

class ChatFormat {
 public:
  // The tokenizer's own template (Tokenizer::chat_template()), or the
  // built-in one. Throws BadRequest naming the template's file when it does
  // not parse. A template that parses but cannot end an assistant turn
  // (raises, or never writes the content) still prompts; the episode
  // methods (Opening, Continuation, TurnClose, EndOfTurnId) then throw
  // BadRequest saying why.
  explicit ChatFormat(const Tokenizer& tokenizer);

  // The whole conversation, assistant turn opened. `messages` are OpenAI
  // chat messages; `tools` null or an array of function schemas. The
  // built-in format renders them with ChatMlTemplate(), which is the
  // built-in format written as a template (and shows an assistant's
  // tool_calls as Qwen2.5 does). Throws BadRequest "messages: ..." when the
  // template refuses them.
  std::string Prompt(const nlohmann::ordered_json& messages,
                     const nlohmann::ordered_json& tools) const;

  // The first segment of an episode: `messages` (system and first
  // observation) with the tools, and the generation prompt.
  std::string Opening(const std::vector<ChatMessage>& messages,
                      const nlohmann::json& tools) const;
  // A later segment: messages that follow a policy turn, and the
  // generation prompt. Throws BadRequest when the template renders them
  // after none of the base conversations.
  std::string Continuation(const std::vector<ChatMessage>& messages,
                           const nlohmann::json& tools) const;
  // What follows an assistant turn's content ("<|im_end|>\n" for ChatML,
  // "<|eot_id|>" for Llama 3).
  const std::string& TurnClose() const;
  // The token that ends a policy turn: the first token of TurnClose.
  int64_t EndOfTurnId() const;
  // Where generation stops: the end of turn, the tokenizer's end-of-text
  // and end-of-turn tokens, its configured eos_token, and the model's own
  // eos ids (config.json's eos_token_id), which transformers' generate also
  // stops on: Llama 3.1 lists <|eom_id|>, the end of a tool-call message,
  // beside <|eot_id|>.
  std::vector<int64_t> StopIds(
      const std::vector<int64_t>& model_eos_ids = {}) const;

  // "built-in ChatML", "chat_template.jinja" or "tokenizer_config.json".
  const std::string& source() const { return source_; }
  bool is_builtin() const { return template_ == nullptr; }

 private:
  std::string Render(const nlohmann::ordered_json& messages,
                     const nlohmann::json& tools, bool add_generation_prompt,
                     const nlohmann::ordered_json& variables) const;
  void FindTurnClose();

  const Tokenizer& tokenizer_;
  std::unique_ptr<ChatTemplate> template_;    // null: built-in ChatML
  nlohmann::ordered_json variables_;          // special tokens
  nlohmann::ordered_json episode_variables_;  // the same, date pinned
  std::string source_ = "built-in ChatML";
  std::string turn_close_ = "<|im_end|>\n";
  int64_t end_of_turn_ = -1;
  std::string turn_close_error_;  // why FindTurnClose failed, if it did
  void RequireTurnClose() const;

  // The base conversation TurnClose was found with; Continuation renders
  // after it.
  size_t base_ = 0;
};

}  // namespace clinrl::policy
