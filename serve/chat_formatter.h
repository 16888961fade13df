// How `clinrl serve` turns chat messages into the prompt text: with the model
// folder's own Hugging Face chat template (the `chat_template` of
// tokenizer_config.json, or chat_template.jinja) when it has one, so the
// model reads a conversation as it was trained to; otherwise with the
// tokenizer's ChatML. The template's special-token variables (bos_token,
// eos_token, ...) come from tokenizer_config.json, as transformers passes
// them.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "policy/chat_template.h"
#include "policy/tokenizer.h"

namespace clinrl::serve {

class ChatFormatter {
 public:
  // Throws BadRequest naming the file when the folder's template does not
  // parse.
  ChatFormatter(const std::string& model_dir,
                const policy::Tokenizer* tokenizer);

  // The prompt with the assistant turn opened. Throws BadRequest naming
  // "messages" (the template refused them) or "tools" (no template to
  // render them with).
  std::string Format(const nlohmann::ordered_json& messages,
                     const nlohmann::ordered_json& tools) const;

  // The tokenizer's end-of-turn and end-of-text ids, and the id of
  // tokenizer_config.json's eos_token (Llama 3's <|eot_id|>) when it has one:
  // where a chat answer ends.
  std::vector<int64_t> StopIds() const;

  // "tokenizer_config.json", "chat_template.jinja" or "ChatML".
  const std::string& source() const { return source_; }

 private:
  const policy::Tokenizer* tokenizer_;
  std::unique_ptr<policy::ChatTemplate> template_;
  nlohmann::ordered_json variables_ = nlohmann::ordered_json::object();
  std::string source_ = "ChatML";
};

}  // namespace clinrl::serve
