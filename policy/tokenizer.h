// One interface over the byte-level tokenizer of tiny models and Hugging Face
// byte-level BPE tokenizer.json files (Qwen2/Qwen3/Llama 3), with the ChatML
// chat format. Token ids map to byte strings, so decoding is exact and
// generation can match stop strings on bytes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clinrl::policy {

struct ChatMessage {
  std::string role;
  std::string content;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Special and added tokens written in the text (`<|im_start|>`) become
  // their ids; everything else is split into ordinary tokens.
  virtual std::vector<int64_t> Encode(std::string_view text) const = 0;
  // Concatenates the bytes of each token; invalid UTF-8 (a token sequence cut
  // inside a character) becomes U+FFFD as in Hugging Face decoding; ids
  // outside the tokenizer (model vocab padding) decode to nothing.
  std::string Decode(const std::vector<int64_t>& ids,
                     bool skip_special = false) const;
  // The raw bytes of one token; throws BadRequest for an unknown id.
  virtual const std::string& TokenBytes(int64_t id) const = 0;
  virtual bool IsSpecial(int64_t id) const = 0;
  // Number of ids, special tokens included (the model's vocab_size may pad
  // this up).
  virtual int64_t size() const = 0;
  // Id of a special or added token by its text.
  virtual std::optional<int64_t> TokenId(const std::string& text) const = 0;

  // Writes tokenizer.json and tokenizer_config.json that transformers loads.
  virtual void Save(const std::string& dir) const = 0;

  // ChatML: <|im_start|>role\ncontent<|im_end|>\n per message, then
  // <|im_start|>assistant\n when add_generation_prompt.
  std::string ApplyChatTemplate(const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) const;
  // The same with the tools the model may call (OpenAI function schemas),
  // rendered exactly as Qwen2.5's published chat template renders
  // apply_chat_template(messages, tools=tools): the system turn (the first
  // message's when it is a system message, else Qwen's default) followed by
  // the "# Tools" block (one tojson line per tool inside <tools></tools>
  // and the <tool_call> instruction), then the other messages as ChatML,
  // with consecutive `tool` messages as one user turn of <tool_response>
  // blocks. Without tools, the plain ChatML above. `conversation_start`
  // false renders a later segment of a conversation (after a policy turn):
  // no system turn, so segments concatenate to the whole conversation's
  // rendering (rollout/episode_tokens.h builds sequences that way).
  std::string ApplyChatTemplate(const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt,
                                const nlohmann::json& tools,
                                bool conversation_start = true) const;
  // The token that ends a turn: <|im_end|> when present, else the end-of-text
  // token.
  int64_t EndOfTurnId() const;
  // Ids that stop generation by default: end of turn and end of text.
  std::vector<int64_t> DefaultStopIds() const;

  // The chat template of the folder the tokenizer was loaded from, found as
  // transformers finds it (chat_template.jinja first, else the
  // `chat_template` of tokenizer_config.json, a string or the "default" of a
  // list); "" when it has none or has the ChatML template clinrl writes, so
  // that policy::ChatFormat uses the built-in ChatML.
  const std::string& chat_template() const { return chat_template_; }
  // "chat_template.jinja" or "tokenizer_config.json" (for messages).
  const std::string& chat_template_origin() const {
    return chat_template_origin_;
  }
  // The special tokens tokenizer_config.json names (bos_token, eos_token,
  // pad_token, unk_token: strings or AddedToken objects' content), which
  // transformers passes to the template.
  const nlohmann::ordered_json& special_token_variables() const {
    return special_token_variables_;
  }

 protected:
  // Reads the chat template and special tokens of tokenizer folder `dir`
  // (above). Throws BadRequest naming the file when tokenizer_config.json
  // is not a JSON object or its chat_template has another shape.
  void ReadChatTemplate(const std::string& dir);

  std::string chat_template_;
  std::string chat_template_origin_;
  nlohmann::ordered_json special_token_variables_ =
      nlohmann::ordered_json::object();
};

// "byte" for the byte-level tokenizer, else a folder with tokenizer.json.
std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& spec);

// The special tokens clinrl gives a tokenizer it creates, in id order after
// the ordinary tokens.
const std::vector<std::string>& DefaultSpecialTokens();

// The Jinja chat template written to tokenizer_config.json: ChatML, and with
// tools Qwen2.5's system tools block, tool-call and tool-response turns, so
// that transformers (and `clinrl serve`) render a clinrl tokenizer's
// conversations as Tokenizer::ApplyChatTemplate does.
const char* ChatMlTemplate();
// The ChatML-only template clinrl wrote before it rendered tools; folders
// carrying it are read as the built-in format.
const char* LegacyChatMlTemplate();

}  // namespace clinrl::policy
