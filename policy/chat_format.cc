#include "policy/chat_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "core/error.h"

namespace clinrl::policy {
namespace {

using OrderedJson = nlohmann::ordered_json;

// Stands for an assistant turn's content while finding what the template
// writes after one; no template writes it of its own.
constexpr char kAssistantMark[] =
    "\x1f"
    "clinrl-assistant-turn"
    "\x1f";

OrderedJson Message(const std::string& role, const std::string& content) {
  return OrderedJson{{"role", role}, {"content", content}};
}

OrderedJson Messages(const std::vector<ChatMessage>& messages) {
  OrderedJson out = OrderedJson::array();
  for (const auto& m : messages) out.push_back(Message(m.role, m.content));
  return out;
}

// The conversations Continuation renders new messages after: a user turn
// and an assistant turn, with a system turn first when the template refuses
// the bare one (and without, first, because Gemma's refuses a system role).
const std::vector<OrderedJson>& Bases() {
  static const std::vector<OrderedJson> kBases = {
      {Message("user", "Hello."), Message("assistant", kAssistantMark)},
      {Message("system", "You are a helpful assistant."),
       Message("user", "Hello."), Message("assistant", kAssistantMark)},
  };
  return kBases;
}

// The text after the only kAssistantMark in `text`; nullopt when the mark is
// missing or repeated.
std::optional<std::string> AfterMark(const std::string& text) {
  const size_t at = text.find(kAssistantMark);
  if (at == std::string::npos ||
      text.find(kAssistantMark, at + 1) != std::string::npos) {
    return std::nullopt;
  }
  return text.substr(at + std::string(kAssistantMark).size());
}

// Llama 3.1's own default, so that an episode renders the same on any day.
constexpr char kPinnedDate[] = "26 Jul 2024";

}  // namespace

ChatFormat::ChatFormat(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {
  variables_ = tokenizer.special_token_variables();
  episode_variables_ = variables_;
  if (!episode_variables_.contains("date_string")) {
    episode_variables_["date_string"] = kPinnedDate;
  }
  if (tokenizer.chat_template().empty()) {
    // A base model's tokenizer may have no ChatML tokens at all: it still
    // prompts and serves completions; only episodes need the end of turn.
    try {
      end_of_turn_ = tokenizer.EndOfTurnId();
    } catch (const BadRequest& e) {
      turn_close_error_ = e.what();
    }
    return;
  }
  source_ = tokenizer.chat_template_origin();
  try {
    template_ = std::make_unique<ChatTemplate>(tokenizer.chat_template());
  } catch (const BadRequest& e) {
    throw BadRequest(fmt::format("{}: {}", source_, e.what()));
  }
  try {
    FindTurnClose();
  } catch (const BadRequest& e) {
    turn_close_error_ = e.what();
  }
}

void ChatFormat::RequireTurnClose() const {
  if (!turn_close_error_.empty()) throw BadRequest(turn_close_error_);
}

const std::string& ChatFormat::TurnClose() const {
  RequireTurnClose();
  return turn_close_;
}

int64_t ChatFormat::EndOfTurnId() const {
  RequireTurnClose();
  return end_of_turn_;
}

void ChatFormat::FindTurnClose() {
  // What follows an assistant turn's content is what the template writes
  // after it both when the conversation ends there and when a user turn
  // follows (Phi-3.5 adds its eos_token at the very end, Qwen3 renders the
  // last assistant turn with an empty reasoning block): the tokens the two
  // renderings share after the content.
  std::string error;
  for (size_t index = 0; index < Bases().size(); ++index) {
    const OrderedJson& base = Bases()[index];
    base_ = index;
    std::optional<std::string> last;
    std::optional<std::string> followed;
    try {
      OrderedJson longer = base;
      longer.push_back(Message("user", "Go on."));
      last = AfterMark(Render(base, nullptr, false, episode_variables_));
      followed = AfterMark(Render(longer, nullptr, true, episode_variables_));
    } catch (const BadRequest& e) {
      error = e.what();
      continue;
    }
    if (!last || !followed) {
      error = "it does not write an assistant turn's content once";
      continue;
    }
    const std::vector<int64_t> a = tokenizer_.Encode(*last);
    const std::vector<int64_t> b = tokenizer_.Encode(*followed);
    size_t shared = 0;
    while (shared < a.size() && shared < b.size() && a[shared] == b[shared]) {
      ++shared;
    }
    turn_close_ = tokenizer_.Decode({a.begin(), a.begin() + shared});
    if (shared > 0 && tokenizer_.IsSpecial(a.front())) {
      end_of_turn_ = a.front();
      return;
    }
    // A template that ends turns with plain text: stop on the eos token.
    const auto eos = variables_.find("eos_token");
    if (eos != variables_.end() && eos->is_string()) {
      if (const auto id = tokenizer_.TokenId(eos->get<std::string>())) {
        end_of_turn_ = *id;
        return;
      }
    }
    error = fmt::format(
        "the text after an assistant turn ({}) starts with no special token "
        "and tokenizer_config.json names no eos_token the tokenizer knows",
        nlohmann::json(turn_close_).dump());
  }
  throw BadRequest(fmt::format(
      "{}: cannot tell how the chat template ends an assistant turn: {}",
      source_, error));
}

std::string ChatFormat::Render(const OrderedJson& messages,
                               const nlohmann::json& tools,
                               bool add_generation_prompt,
                               const OrderedJson& variables) const {
  const OrderedJson ordered_tools =
      tools.is_array() && !tools.empty() ? OrderedJson(tools) : OrderedJson();
  return template_->Render(ChatTemplateContext(
      messages, ordered_tools, add_generation_prompt, variables));
}

std::string ChatFormat::Prompt(const OrderedJson& messages,
                               const OrderedJson& tools) const {
  // The built-in format renders requests through the template clinrl
  // writes (ChatMlTemplate), equal to it and able to show an assistant's
  // tool_calls; OpenAI's text parts become one string for it.
  static const ChatTemplate kBuiltIn(ChatMlTemplate());
  const ChatTemplate& chat_template =
      template_ != nullptr ? *template_ : kBuiltIn;
  OrderedJson shown = messages;
  if (template_ == nullptr && shown.is_array()) {
    for (auto& m : shown) {
      if (!m.is_object() || !m.contains("content") ||
          !m["content"].is_array()) {
        continue;
      }
      std::string text;
      for (const auto& part : m["content"]) {
        if (part.is_object() && part.contains("text") &&
            part["text"].is_string()) {
          text += part["text"].get<std::string>();
        }
      }
      m["content"] = text;
    }
  }
  try {
    return chat_template.Render(ChatTemplateContext(
        shown, tools, /*add_generation_prompt=*/true, variables_));
  } catch (const BadRequest& e) {
    throw BadRequest(
        fmt::format("messages: the model's chat template ({}) refused them: {}",
                    source_, e.what()));
  }
}

std::string ChatFormat::Opening(const std::vector<ChatMessage>& messages,
                                const nlohmann::json& tools) const {
  if (template_ == nullptr) {
    return tokenizer_.ApplyChatTemplate(messages, true, tools, true);
  }
  RequireTurnClose();
  try {
    return Render(Messages(messages), tools, true, episode_variables_);
  } catch (const BadRequest& e) {
    throw BadRequest(fmt::format(
        "chat template ({}) refused an episode's first messages: {}", source_,
        e.what()));
  }
}

std::string ChatFormat::Continuation(const std::vector<ChatMessage>& messages,
                                     const nlohmann::json& tools) const {
  if (template_ == nullptr) {
    return tokenizer_.ApplyChatTemplate(messages, true, tools, false);
  }
  RequireTurnClose();
  // The new messages rendered after the assistant turn of the base
  // conversation TurnClose was found with (always the same one, so that
  // every process renders an episode alike): what follows that turn's
  // content and TurnClose.
  OrderedJson whole = Bases()[base_];
  const OrderedJson added = Messages(messages);
  whole.insert(whole.end(), added.begin(), added.end());
  std::string error;
  std::optional<std::string> after;
  try {
    after = AfterMark(Render(whole, tools, true, episode_variables_));
  } catch (const BadRequest& e) {
    error = e.what();
  }
  if (after && after->compare(0, turn_close_.size(), turn_close_) == 0) {
    return after->substr(turn_close_.size());
  }
  if (error.empty()) {
    error = "the assistant turn before them does not end with TurnClose";
  }
  throw BadRequest(fmt::format(
      "chat template ({}) cannot render messages that follow a policy turn "
      "({}): {}",
      source_, added.dump().substr(0, 200), error));
}

std::vector<int64_t> ChatFormat::StopIds(
    const std::vector<int64_t>& model_eos_ids) const {
  std::vector<int64_t> ids = tokenizer_.DefaultStopIds();
  auto add = [&ids](int64_t id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  if (turn_close_error_.empty()) add(end_of_turn_);
  const auto eos = variables_.find("eos_token");
  if (eos != variables_.end() && eos->is_string()) {
    if (const auto id = tokenizer_.TokenId(eos->get<std::string>())) add(*id);
  }
  for (int64_t id : model_eos_ids) add(id);
  return ids;
}

}  // namespace clinrl::policy
