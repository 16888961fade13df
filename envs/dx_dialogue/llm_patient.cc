#include "envs/dx_dialogue/llm_patient.h"

#include <algorithm>

#include "core/error.h"
#include "envs/env_options.h"

namespace clinrl::envs::dx {

using nlohmann::json;

LlmPatientOptions LlmPatientOptions::FromJson(const json& j,
                                              const std::string& path) {
  LlmPatientOptions o = ReadOptions<LlmPatientOptions>(j, path);
  if (o.endpoint.rfind("http://", 0) != 0 &&
      o.endpoint.rfind("https://", 0) != 0) {
    throw ConfigError(fmt::format(
        "{}.endpoint: expected an http:// or https:// URL, got \"{}\"", path,
        o.endpoint));
  }
  return o;
}

LlmPatient::LlmPatient(std::shared_ptr<const KnowledgeBase> kb,
                       const ClinicalCase& c, PatientOptions options,
                       LlmPatientOptions llm)
    : kb_(kb), rules_(kb, c, options), llm_(std::move(llm)) {
  std::string have, unsure;
  for (int f : kb_->AskableFindings()) {
    // Noise applies to the LLM too: a denied finding is simply not listed,
    // a vague one is something the patient is unsure about.
    const std::string answer = rules_.AnswerFor(f);
    std::string* list = answer == "yes"                           ? &have
                        : answer == "unsure" || answer == "vague" ? &unsure
                                                                  : nullptr;
    if (list == nullptr) continue;
    if (!list->empty()) *list += "; ";
    *list += kb_->findings[f].lay;
  }
  const char* manner = options.persona == Persona::kTerse ? "very brief"
                       : options.persona == Persona::kTalkative
                           ? "chatty but on topic"
                       : options.persona == Persona::kAnxious ? "worried"
                                                              : "plain";
  system_prompt_ = fmt::format(
      "You are a patient talking to a doctor. You are a {}. You came in "
      "because of: {}. Your manner is {}. Reply in one short sentence in "
      "everyday words. Answer only what the doctor asks and never mention "
      "other symptoms. You have: {}. You are not sure about: {}. You do not "
      "have anything else. You do not know your diagnosis; never guess one.",
      Demographics(c), kb_->findings[c.chief_complaint].lay, manner, have,
      unsure.empty() ? "nothing" : unsure);
}

std::string LlmPatient::Complete(const std::string& question) {
  if (chat_ == nullptr) {
    ChatEndpoint endpoint;
    endpoint.url = llm_.endpoint;
    endpoint.model = llm_.model;
    endpoint.api_key_env = llm_.api_key_env;
    endpoint.timeout_ms = llm_.timeout_ms;
    endpoint.max_retries = llm_.max_retries;
    chat_ = std::make_unique<ChatClient>(std::move(endpoint), "patient");
  }
  json messages = json::array();
  messages.push_back({{"role", "system"}, {"content", system_prompt_}});
  for (const auto& [q, a] : history_) {
    messages.push_back({{"role", "user"}, {"content", q}});
    messages.push_back({{"role", "assistant"}, {"content", a}});
  }
  messages.push_back({{"role", "user"}, {"content", question}});
  return chat_
      ->Complete({{"messages", messages},
                  {"max_tokens", llm_.max_tokens},
                  {"temperature", llm_.temperature}})
      .content;
}

std::string LlmPatient::CheckReply(const std::string& question,
                                   const std::string& text) const {
  const auto asked = kb_->finding_matcher.Match(question);
  for (int f : kb_->finding_matcher.Match(text)) {
    if (std::find(asked.begin(), asked.end(), f) == asked.end()) {
      return fmt::format(
          "llm patient: reply mentions \"{}\", which was not asked",
          kb_->findings[f].name);
    }
  }
  if (!kb_->condition_matcher.Match(text).empty()) {
    return "llm patient: reply names a condition";
  }
  if (NormalizeText(text).empty()) return "llm patient: empty reply";
  return "";
}

PatientReply LlmPatient::Answer(const std::string& question) {
  PatientReply rule_reply = rules_.Answer(question);
  last_fallback_.clear();
  if (!gave_up_.empty()) {
    last_fallback_ =
        "llm patient: not asked, the endpoint gave no answer earlier in this "
        "episode: " +
        gave_up_;
  } else {
    try {
      const std::string text = Complete(question);
      last_fallback_ = CheckReply(question, text);
      if (last_fallback_.empty()) {
        history_.emplace_back(question, text);
        rule_reply.text = text;
        return rule_reply;
      }
    } catch (const IoError& e) {
      // No answer even after the retries (no connection, timeouts, 429 or
      // 5xx): asking again this episode would only repeat the wait.
      gave_up_ = e.what();
      last_fallback_ = std::string("llm patient: ") + e.what();
    } catch (const std::exception& e) {
      // HTTP 4xx, a malformed response, an unset api_key_env, a question
      // that is not valid UTF-8: known at once, so the next question still
      // asks.
      last_fallback_ = std::string("llm patient: ") + e.what();
    }
  }
  history_.emplace_back(question, rule_reply.text);
  return rule_reply;
}

}  // namespace clinrl::envs::dx
