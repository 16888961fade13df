#include "policy/tokenizer.h"

#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "core/atomic_file.h"
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

namespace {

// The file when it exists (core's ReadFile names an unreadable one).
std::optional<std::string> ReadIfPresent(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  return ReadFile(path);
}

}  // namespace

void Tokenizer::ReadChatTemplate(const std::string& dir) {
  const std::string config_path = dir + "/tokenizer_config.json";
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  if (const auto text = ReadIfPresent(config_path)) {
    config = nlohmann::ordered_json::parse(*text, nullptr,
                                           /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      throw BadRequest(fmt::format("{}: not a JSON object", config_path));
    }
  }
  special_token_variables_ = nlohmann::ordered_json::object();
  for (const char* name :
       {"bos_token", "eos_token", "pad_token", "unk_token"}) {
    const auto it = config.find(name);
    if (it == config.end()) continue;
    if (it->is_string()) special_token_variables_[name] = *it;
    if (it->is_object() && it->contains("content")) {
      special_token_variables_[name] = (*it)["content"];
    }
  }
  std::optional<std::string> source = ReadIfPresent(dir + "/chat_template.jinja");
  chat_template_origin_ = "chat_template.jinja";
  const auto it = config.find("chat_template");
  if (!source && it != config.end() && !it->is_null()) {
    chat_template_origin_ = "tokenizer_config.json";
    if (it->is_string()) source = it->get<std::string>();
    if (it->is_array()) {
      for (const auto& named : *it) {
        if (named.is_object() && named.value("name", "") == "default" &&
            named.contains("template") && named["template"].is_string()) {
          source = named["template"].get<std::string>();
        }
      }
    }
    if (!source) {
      throw BadRequest(fmt::format(
          "{}: chat_template: expected a string or a list with a "
          "\"default\" template, got {}",
          config_path, it->dump().substr(0, 80)));
    }
  }
  // clinrl's own templates render as the built-in format does; reading them
  // as such keeps the fast path for clinrl-made tokenizers.
  if (!source || *source == ChatMlTemplate() ||
      *source == LegacyChatMlTemplate()) {
    chat_template_.clear();
    chat_template_origin_.clear();
    return;
  }
  chat_template_ = *source;
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

const char* LegacyChatMlTemplate() {
  return "{% for message in messages %}{{'<|im_start|>' + message['role'] + "
         "'\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
         "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

const char* ChatMlTemplate() {
  // Without tools, ChatML for every message; with tools, the rendering of
  // Qwen2.5's published template (system turn with the tools block,
  // assistant tool calls, tool results grouped in one user turn), which is
  // what ApplyChatTemplate(messages, ..., tools) writes. Content that is not
  // a string (an assistant's null next to its tool calls, which
  // apply_chat_template drops) renders as nothing, as in ApplyChatTemplate.
  return R"jinja({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
    {%- for message in messages %}
        {%- if message.role == "tool" %}
            {%- if loop.first or messages[loop.index0 - 1].role != "tool" %}
                {{- '<|im_start|>user' }}
            {%- endif %}
            {{- '\n<tool_response>\n' + message.content + '\n</tool_response>' }}
            {%- if loop.last or messages[loop.index0 + 1].role != "tool" %}
                {{- '<|im_end|>\n' }}
            {%- endif %}
        {%- elif message.role == "assistant" and message.tool_calls %}
            {{- '<|im_start|>assistant' }}
            {%- if message.content %}
                {{- '\n' + message.content }}
            {%- endif %}
            {%- for tool_call in message.tool_calls %}
                {%- if tool_call.function is defined %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '\n<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' }}
                {{- tool_call.arguments | tojson }}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
            {{- '<|im_end|>\n' }}
        {%- elif not (loop.first and message.role == "system") %}
            {{- '<|im_start|>' + message.role + '\n' + (message.content if message.content is string else '') + '<|im_end|>\n' }}
        {%- endif %}
    {%- endfor %}
{%- else %}
    {%- for message in messages %}
        {{- '<|im_start|>' + message['role'] + '\n' + (message['content'] if message['content'] is string else '') + '<|im_end|>\n' }}
    {%- endfor %}
{%- endif %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %})jinja";
}

std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& spec) {
  if (spec == "byte") {
    return BpeTokenizer::FromByteMerges({}, DefaultSpecialTokens());
  }
  return BpeTokenizer::Load(spec);
}

}  // namespace clinrl::policy
