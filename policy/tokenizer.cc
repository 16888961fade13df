#include "policy/tokenizer.h"

#include <fmt/format.h>

#include "core/error.h"
#include "policy/bpe_tokenizer.h"
#include "policy/jinja_value.h"
#include "policy/pre_tokenizer.h"

namespace clinrl::policy {

std::string Tokenizer::Decode(const std::vector<int64_t>& ids,
                              bool skip_special) const {
  std::string bytes;
  for (int64_t id : ids) {
    // Models pad vocab_size past the tokenizer (Qwen: 151936 rows for 151669
    // tokens); like Hugging Face decoding, ids without a token add nothing.
    if (id < 0 || id >= size()) continue;
    if (skip_special && IsSpecial(id)) continue;
    bytes += TokenBytes(id);
  }
  return ToValidUtf8(bytes);
}

std::string Tokenizer::ApplyChatTemplate(
    const std::vector<ChatMessage>& messages,
    bool add_generation_prompt) const {
  std::string out;
  for (const auto& m : messages) {
    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

namespace {

// Qwen2.5's chat template, verbatim (tests/policy/chat_templates/
// qwen2.5_instruct.jinja): its default system text and its tools block.
constexpr char kQwenDefaultSystem[] =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
constexpr char kQwenToolsLead[] =
    "\n\n# Tools\n\nYou may call one or more functions to assist with the "
    "user query.\n\nYou are provided with function signatures within "
    "<tools></tools> XML tags:\n<tools>";
constexpr char kQwenToolsTail[] =
    "\n</tools>\n\nFor each function call, return a json object with "
    "function name and arguments within <tool_call></tool_call> XML "
    "tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";

}  // namespace

std::string Tokenizer::ApplyChatTemplate(
    const std::vector<ChatMessage>& messages, bool add_generation_prompt,
    const nlohmann::json& tools, bool conversation_start) const {
  if (!tools.is_array() || tools.empty()) {
    return ApplyChatTemplate(messages, add_generation_prompt);
  }
  std::string out;
  size_t first = 0;
  if (conversation_start) {
    const bool has_system = !messages.empty() && messages[0].role == "system";
    out += "<|im_start|>system\n";
    out += has_system ? messages[0].content : kQwenDefaultSystem;
    out += kQwenToolsLead;
    for (const auto& tool : tools) {
      // tojson: json.dumps with Python's separators, keys in the given order
      // (nlohmann's, sorted, as the spec's JSON reaches transformers).
      out += "\n" + jinja::PythonJsonDumps(jinja::Json(tool), std::nullopt);
    }
    out += kQwenToolsTail;
    first = has_system ? 1 : 0;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role != "tool") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      continue;
    }
    // Consecutive tool results share one user turn.
    if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
    out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
    if (i + 1 == messages.size() || messages[i + 1].role != "tool") {
      out += "<|im_end|>\n";
    }
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

int64_t Tokenizer::EndOfTurnId() const {
  if (auto id = TokenId("<|im_end|>")) return *id;
  if (auto id = TokenId("<|endoftext|>")) return *id;
  throw BadRequest(
      "tokenizer has neither <|im_end|> nor <|endoftext|>; the ChatML chat "
      "format needs one of them");
}

std::vector<int64_t> Tokenizer::DefaultStopIds() const {
  std::vector<int64_t> ids;
  for (const char* t : {"<|im_end|>", "<|endoftext|>"}) {
    if (auto id = TokenId(t)) ids.push_back(*id);
  }
  return ids;
}

const std::vector<std::string>& DefaultSpecialTokens() {
  static const std::vector<std::string> kTokens = {
      "<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  return kTokens;
}

const char* ChatMlTemplate() {
  return "{% for message in messages %}{{'<|im_start|>' + message['role'] + "
         "'\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
         "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& spec) {
  if (spec == "byte") {
    return BpeTokenizer::FromByteMerges({}, DefaultSpecialTokens());
  }
  return BpeTokenizer::Load(spec);
}

}  // namespace clinrl::policy
