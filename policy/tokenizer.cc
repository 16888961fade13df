#include "policy/tokenizer.h"

#include <fmt/format.h>

#include "core/error.h"
#include "policy/bpe_tokenizer.h"
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
