#include "serve/chat_formatter.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace clinrl::serve {
namespace {

using OrderedJson = nlohmann::ordered_json;

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// tokenizer_config.json's chat_template: a string, or a list of named
// templates of which "default" is the one apply_chat_template uses.
std::optional<std::string> ConfigTemplate(const OrderedJson& config) {
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const auto& named : *it) {
      if (named.is_object() && named.value("name", "") == "default" &&
          named.contains("template") && named["template"].is_string()) {
        return named["template"].get<std::string>();
      }
    }
  }
  throw BadRequest(
      "tokenizer_config.json chat_template: expected a string or a list "
      "with a \"default\" template");
}

}  // namespace

ChatFormatter::ChatFormatter(const std::string& model_dir,
                             const policy::Tokenizer* tokenizer)
    : tokenizer_(tokenizer) {
  const std::string config_path = model_dir + "/tokenizer_config.json";
  OrderedJson config = OrderedJson::object();
  if (const auto text = ReadFile(config_path)) {
    config = OrderedJson::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      throw BadRequest(fmt::format("{}: not a JSON object", config_path));
    }
  }
  // Special tokens are strings or AddedToken objects {"content": ...}.
  for (const char* name :
       {"bos_token", "eos_token", "pad_token", "unk_token"}) {
    const auto it = config.find(name);
    if (it == config.end()) continue;
    if (it->is_string()) variables_[name] = *it;
    if (it->is_object() && it->contains("content")) {
      variables_[name] = (*it)["content"];
    }
  }
  std::optional<std::string> source = ConfigTemplate(config);
  source_ = "tokenizer_config.json";
  if (!source) {
    source = ReadFile(model_dir + "/chat_template.jinja");
    source_ = "chat_template.jinja";
  }
  if (!source) {
    source_ = "ChatML";
    return;
  }
  try {
    template_ = std::make_unique<policy::ChatTemplate>(*source);
  } catch (const BadRequest& e) {
    throw BadRequest(fmt::format("{} in {}: {}", source_, model_dir, e.what()));
  }
}

std::vector<int64_t> ChatFormatter::StopIds() const {
  std::vector<int64_t> ids = tokenizer_->DefaultStopIds();
  const auto eos = variables_.find("eos_token");
  if (eos != variables_.end() && eos->is_string()) {
    const auto id = tokenizer_->TokenId(eos->get<std::string>());
    if (id && std::find(ids.begin(), ids.end(), *id) == ids.end()) {
      ids.push_back(*id);
    }
  }
  return ids;
}

std::string ChatFormatter::Format(const OrderedJson& messages,
                                  const OrderedJson& tools) const {
  if (template_ != nullptr) {
    try {
      return template_->Render(policy::ChatTemplateContext(
          messages, tools, /*add_generation_prompt=*/true, variables_));
    } catch (const BadRequest& e) {
      throw BadRequest(fmt::format(
          "messages: the model's chat template refused them: {}", e.what()));
    }
  }
  if (!tools.is_null()) {
    throw BadRequest(
        "tools: the model folder has no chat template to render tools with "
        "(ChatML fallback)");
  }
  std::vector<policy::ChatMessage> chat;
  for (const auto& m : messages) {
    std::string content;
    const auto it = m.find("content");
    if (it != m.end() && it->is_string()) content = it->get<std::string>();
    if (it != m.end() && it->is_array()) {
      for (const auto& part : *it) content += part["text"].get<std::string>();
    }
    chat.push_back({m["role"].get<std::string>(), content});
  }
  return tokenizer_->ApplyChatTemplate(chat, /*add_generation_prompt=*/true);
}

}  // namespace clinrl::serve
