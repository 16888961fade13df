#include "envs/dx_dialogue/llm_patient.h"

#include <httplib.h>

#include <algorithm>
#include <cstdlib>

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
  // "http://host:port/v1" -> client "http://host:port", path "/v1/..."
  const size_t scheme = llm_.endpoint.find("://");
  const size_t slash = llm_.endpoint.find('/', scheme + 3);
  const std::string host = slash == std::string::npos
                               ? llm_.endpoint
                               : llm_.endpoint.substr(0, slash);
  std::string prefix =
      slash == std::string::npos ? "" : llm_.endpoint.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (prefix.size() < 3 || prefix.compare(prefix.size() - 3, 3, "/v1") != 0) {
    prefix += "/v1";
  }
  const std::string path = prefix + "/chat/completions";

  json messages = json::array();
  messages.push_back({{"role", "system"}, {"content", system_prompt_}});
  for (const auto& [q, a] : history_) {
    messages.push_back({{"role", "user"}, {"content", q}});
    messages.push_back({{"role", "assistant"}, {"content", a}});
  }
  messages.push_back({{"role", "user"}, {"content", question}});
  const json body = {{"model", llm_.model},
                     {"messages", messages},
                     {"max_tokens", llm_.max_tokens},
                     {"temperature", llm_.temperature}};

  httplib::Client client(host);
  const time_t sec = static_cast<time_t>(llm_.timeout_ms / 1000);
  const time_t usec = static_cast<time_t>((llm_.timeout_ms % 1000) * 1000);
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  httplib::Headers headers;
  if (!llm_.api_key_env.empty()) {
    const char* key = std::getenv(llm_.api_key_env.c_str());
    if (key == nullptr) {
      throw ConfigError(
          fmt::format("patient.api_key_env: environment variable {} is not set",
                      llm_.api_key_env));
    }
    headers.emplace("Authorization", std::string("Bearer ") + key);
  }
  auto res = client.Post(path, headers, body.dump(), "application/json");
  if (!res) {
    throw InternalError(fmt::format("llm patient: POST {}{} failed: {}", host,
                                    path, httplib::to_string(res.error())));
  }
  if (res->status != 200) {
    throw InternalError(
        fmt::format("llm patient: POST {}{} returned HTTP {}: {}", host, path,
                    res->status, res->body.substr(0, 200)));
  }
  const json reply = json::parse(res->body, nullptr, false);
  if (reply.is_discarded() || !reply.is_object() ||
      !reply.contains("choices") || !reply["choices"].is_array() ||
      reply["choices"].empty() || !reply["choices"][0].is_object() ||
      !reply["choices"][0].contains("message") ||
      !reply["choices"][0]["message"].is_object() ||
      !reply["choices"][0]["message"].contains("content") ||
      !reply["choices"][0]["message"]["content"].is_string()) {
    throw InternalError(fmt::format(
        "llm patient: reply.choices[0].message.content: expected a string in "
        "an OpenAI chat-completions reply, got {}",
        res->body.substr(0, 200)));
  }
  return reply["choices"][0]["message"]["content"].get<std::string>();
}

PatientReply LlmPatient::Answer(const std::string& question) {
  PatientReply rule_reply = rules_.Answer(question);
  last_fallback_.clear();
  std::string text;
  try {
    text = Complete(question);
  } catch (const Error& e) {
    last_fallback_ = e.what();
  }
  if (last_fallback_.empty()) {
    const auto asked = kb_->finding_matcher.Match(question);
    for (int f : kb_->finding_matcher.Match(text)) {
      if (std::find(asked.begin(), asked.end(), f) == asked.end()) {
        last_fallback_ = fmt::format(
            "llm patient: reply mentions \"{}\", which was not asked",
            kb_->findings[f].name);
        break;
      }
    }
    if (last_fallback_.empty() && !kb_->condition_matcher.Match(text).empty()) {
      last_fallback_ = "llm patient: reply names a condition";
    }
    if (last_fallback_.empty() && NormalizeText(text).empty()) {
      last_fallback_ = "llm patient: empty reply";
    }
  }
  if (!last_fallback_.empty()) {
    history_.emplace_back(question, rule_reply.text);
    return rule_reply;
  }
  history_.emplace_back(question, text);
  rule_reply.text = text;
  return rule_reply;
}

}  // namespace clinrl::envs::dx
