#include "serve/openai_protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/tool_call_text.h"

namespace clinrl::serve {
namespace {

using Json = nlohmann::json;

std::string Shown(const Json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return fmt::format("{} {}", value.type_name(), text);
}

[[noreturn]] void Expected(const std::string& field, const std::string& what,
                           const Json& got) {
  throw BadRequest(
      fmt::format("{}: expected {}, got {}", field, what, Shown(got)));
}

// A field that is absent or null reads as "not given", as OpenAI does.
const Json* Field(const Json& body, const std::string& name) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> Number(const Json& body, const std::string& name,
                             double low, double high) {
  const Json* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) Expected(name, "a number", *v);
  const double x = v->get<double>();
  if (!(x >= low && x <= high)) {
    throw BadRequest(
        fmt::format("{}: {} is not allowed; expected {} <= {} <= {}", name, x,
                    low, name, high));
  }
  return x;
}

std::optional<int64_t> Integer(const Json& body, const std::string& name,
                               int64_t low, int64_t high) {
  const Json* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) Expected(name, "an integer", *v);
  const int64_t x = v->get<int64_t>();
  if (x < low || x > high) {
    throw BadRequest(
        fmt::format("{}: {} is not allowed; expected {} <= {} <= {}", name, x,
                    low, name, high));
  }
  return x;
}

std::optional<bool> Bool(const Json& body, const std::string& name) {
  const Json* v = Field(body, name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) Expected(name, "true or false", *v);
  return v->get<bool>();
}

// Penalties and logit_bias change sampling in ways the engine does not
// implement: refuse anything but their neutral values.
void RefuseUnsupported(const Json& body) {
  for (const char* name : {"presence_penalty", "frequency_penalty"}) {
    const auto value = Number(body, name, -2.0, 2.0);
    if (value && *value != 0.0) {
      throw BadRequest(fmt::format(
          "{}: {} is not supported by clinrl serve; leave it out or 0", name,
          *value));
    }
  }
  const Json* bias = Field(body, "logit_bias");
  if (bias != nullptr && !(bias->is_object() && bias->empty())) {
    throw BadRequest("logit_bias: not supported by clinrl serve");
  }
}

void ReadSampling(const Json& body, CompletionRequest& r) {
  if (!body.is_object()) Expected("body", "a JSON object", body);
  const Json* model = Field(body, "model");
  if (model != nullptr) {
    if (!model->is_string()) Expected("model", "a string", *model);
    r.model = model->get<std::string>();
  }
  r.sampling.temperature = Number(body, "temperature", 0.0, 2.0).value_or(1.0);
  const auto top_p = Number(body, "top_p", 0.0, 1.0);
  if (top_p && *top_p == 0.0) {
    throw BadRequest("top_p: 0 is not allowed; expected 0 < top_p <= 1");
  }
  r.sampling.top_p = top_p.value_or(1.0);
  r.sampling.max_new_tokens = kDefaultMaxTokens;
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    const auto max = Integer(body, name, 1, 1 << 30);
    if (max) r.sampling.max_new_tokens = *max;
  }
  if (const Json* stop = Field(body, "stop")) {
    if (stop->is_string()) {
      r.sampling.stop_strings = {stop->get<std::string>()};
    } else if (stop->is_array() && stop->size() <= 4) {
      for (size_t i = 0; i < stop->size(); ++i) {
        const Json& s = (*stop)[i];
        if (!s.is_string() || s.get<std::string>().empty()) {
          Expected(fmt::format("stop[{}]", i), "a non-empty string", s);
        }
        r.sampling.stop_strings.push_back(s.get<std::string>());
      }
    } else {
      Expected("stop", "a string or a list of at most 4 strings", *stop);
    }
  }
  if (const Json* seed = Field(body, "seed")) {
    if (!seed->is_number_integer()) Expected("seed", "an integer", *seed);
    r.sampling.seed = static_cast<uint64_t>(seed->get<int64_t>());
    r.has_seed = true;
  }
  r.n = Integer(body, "n", 1, 128).value_or(1);
  r.stream = Bool(body, "stream").value_or(false);
  if (const Json* options = Field(body, "stream_options")) {
    if (!options->is_object()) {
      Expected("stream_options", "an object", *options);
    }
    r.include_usage = Bool(*options, "include_usage").value_or(false);
  }
  RefuseUnsupported(body);
}

const std::set<std::string> kRoles = {"system", "developer", "user",
                                      "assistant", "tool"};

void CheckContent(const Json& message, const std::string& where,
                  const std::string& role) {
  const auto it = message.find("content");
  if (it == message.end() || it->is_null()) {
    if (role == "assistant") return;  // tool_calls instead of content
    throw BadRequest(fmt::format(
        "{}.content: missing; a {} message needs content", where, role));
  }
  if (it->is_string()) return;
  if (!it->is_array()) {
    Expected(where + ".content", "a string or a list of text parts", *it);
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& part = (*it)[i];
    const std::string at = fmt::format("{}.content[{}]", where, i);
    if (!part.is_object() || part.value("type", Json()) != "text" ||
        !part.contains("text") || !part["text"].is_string()) {
      Expected(at, "a text part {\"type\": \"text\", \"text\": ...}", part);
    }
  }
}

// OpenAI sends an assistant's tool-call arguments as a JSON string; chat
// templates (Qwen2.5's `tool_call.arguments | tojson`) expect the object,
// and would otherwise show the model a quoted string it never wrote. As
// vLLM does before rendering, a string holding a JSON object becomes that
// object; anything else is left as sent.
void ParseToolCallArguments(nlohmann::ordered_json& message) {
  const auto calls = message.find("tool_calls");
  if (calls == message.end() || !calls->is_array()) return;
  for (auto& call : *calls) {
    if (!call.is_object() || !call.contains("function") ||
        !call["function"].is_object()) {
      continue;
    }
    auto& function = call["function"];
    const auto arguments = function.find("arguments");
    if (arguments == function.end() || !arguments->is_string()) continue;
    nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(
        arguments->get<std::string>(), nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded() && parsed.is_object()) {
      function["arguments"] = std::move(parsed);
    }
  }
}

void ReadMessages(const Json& body, CompletionRequest& r) {
  const Json* messages = Field(body, "messages");
  if (messages == nullptr) {
    throw BadRequest("messages: missing; expected a list of messages");
  }
  if (!messages->is_array() || messages->empty()) {
    Expected("messages", "a non-empty list of messages", *messages);
  }
  r.messages = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) Expected(where, "an object", m);
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      Expected(where + ".role", "a string", role == m.end() ? Json() : *role);
    }
    if (kRoles.count(role->get<std::string>()) == 0) {
      throw BadRequest(fmt::format(
          "{}.role: unknown role \"{}\"; expected one of system, developer, "
          "user, assistant, tool",
          where, role->get<std::string>()));
    }
    CheckContent(m, where, role->get<std::string>());
    r.messages.push_back(nlohmann::ordered_json::parse(m.dump()));
    ParseToolCallArguments(r.messages.back());
  }
}

void ReadTools(const Json& body, CompletionRequest& r) {
  r.tools = nullptr;
  if (const Json* tools = Field(body, "tools")) {
    if (!tools->is_array()) Expected("tools", "a list of tools", *tools);
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      if (!t.is_object() || !t.contains("function") ||
          !t["function"].is_object() || !t["function"].contains("name")) {
        Expected(fmt::format("tools[{}]", i),
                 "{\"type\": \"function\", \"function\": {\"name\": ...}}", t);
      }
    }
    if (!tools->empty()) {
      r.tools = nlohmann::ordered_json::parse(tools->dump());
    }
  }
  if (const Json* choice = Field(body, "tool_choice")) {
    if (!choice->is_string() || (*choice != "auto" && *choice != "none")) {
      throw BadRequest(fmt::format(
          "tool_choice: {} is not supported; expected \"auto\" or \"none\"",
          choice->dump()));
    }
    if (*choice == "none") r.tools = nullptr;
  }
}

}  // namespace

CompletionRequest ParseChatRequest(const Json& body) {
  CompletionRequest r;
  r.chat = true;
  ReadSampling(body, r);
  ReadMessages(body, r);
  ReadTools(body, r);
  r.logprobs = Bool(body, "logprobs").value_or(false);
  if (const auto top = Integer(body, "top_logprobs", 0, kMaxTopLogprobs)) {
    if (!r.logprobs) {
      throw BadRequest(fmt::format(
          "top_logprobs: {} needs logprobs: true; expected logprobs true "
          "with top_logprobs, or top_logprobs left out",
          *top));
    }
    r.top_logprobs = *top;
  }
  r.sampling.top_logprobs = r.logprobs ? r.top_logprobs : -1;
  return r;
}

CompletionRequest ParseCompletionRequest(const Json& body) {
  CompletionRequest r;
  r.chat = false;
  ReadSampling(body, r);
  // OpenAI's default for this endpoint.
  if (Field(body, "max_tokens") == nullptr) r.sampling.max_new_tokens = 16;
  const Json* prompt = Field(body, "prompt");
  if (prompt == nullptr) {
    throw BadRequest("prompt: missing; expected a string or a list of them");
  }
  if (prompt->is_string()) {
    r.prompts = {prompt->get<std::string>()};
  } else if (prompt->is_array() && !prompt->empty()) {
    for (size_t i = 0; i < prompt->size(); ++i) {
      const Json& p = (*prompt)[i];
      if (!p.is_string()) {
        Expected(fmt::format("prompt[{}]", i),
                 "a string (token-id prompts are not supported)", p);
      }
      r.prompts.push_back(p.get<std::string>());
    }
  } else {
    Expected("prompt", "a string or a non-empty list of strings", *prompt);
  }
  // The legacy API's logprobs is the number of alternatives per token.
  const auto top = Integer(body, "logprobs", 0, kMaxTopLogprobs);
  r.logprobs = top.has_value();
  r.top_logprobs = top.value_or(0);
  r.sampling.top_logprobs = r.logprobs ? r.top_logprobs : -1;
  if (Bool(body, "echo").value_or(false)) {
    throw BadRequest("echo: true is not supported by clinrl serve");
  }
  if (Field(body, "suffix") != nullptr) {
    throw BadRequest("suffix: not supported by clinrl serve");
  }
  return r;
}

Json ErrorBody(const std::string& message, const std::string& type,
               const std::string& code) {
  const std::string param = ParamOf(message);
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? Json() : Json(param)},
            {"code", code.empty() ? Json() : Json(code)}}}};
}

std::string ParamOf(const std::string& message) {
  const size_t colon = message.find(": ");
  if (colon == std::string::npos || colon == 0) return "";
  const std::string field = message.substr(0, colon);
  for (char c : field) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
          c == '[' || c == ']')) {
      return "";
    }
  }
  return field;
}

std::string OpenAiFinishReason(policy::FinishReason reason) {
  return reason == policy::FinishReason::kLength ? "length" : "stop";
}

std::string CutAtStop(const std::string& text,
                      const std::vector<std::string>& stops) {
  size_t cut = text.size();
  for (const auto& stop : stops) {
    const size_t at = text.find(stop);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  return text.substr(0, cut);
}

ChoiceToolCalls ChoiceToolCallsOf(const std::string& text,
                               const std::string& id_prefix) {
  // The project's one reader of tool-call text (core/tool_call_text.h), so
  // a served model's calls are read as the env that runs them reads them.
  // As vLLM's hermes parser does, a text whose calls do not all parse is
  // answered as content: the client sees what the model wrote.
  ChoiceToolCalls parsed;
  parsed.content = text;
  const clinrl::ParsedToolCalls read = clinrl::ParseToolCalls(text);
  if (!read.error.empty() || read.calls.empty()) return parsed;
  const size_t open = text.find("<tool_call>");
  // Llama's JSON call is the whole text: no content beside it.
  parsed.content = open == std::string::npos ? "" : text.substr(0, open);
  for (const ToolCall& call : read.calls) {
    parsed.tool_calls.push_back(
        {{"id", fmt::format("{}_{}", id_prefix, parsed.tool_calls.size())},
         {"type", "function"},
         {"function",
          {{"name", call.name}, {"arguments", call.arguments.dump()}}}});
  }
  return parsed;
}

Json Usage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

namespace {

// OpenAI's `bytes`: the token's own bytes, which for a token that holds
// part of a character are not those of its decoded text.
std::vector<uint8_t> Bytes(const std::string& raw, const std::string& text) {
  const std::string& bytes = raw.empty() ? text : raw;
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

}  // namespace

StreamedToolCalls StreamedToolCallsOf(const std::string& text, bool finished,
                                      const std::string& id_prefix) {
  StreamedToolCalls shown;
  if (finished) {
    ChoiceToolCalls parsed = ChoiceToolCallsOf(text, id_prefix);
    shown.content = std::move(parsed.content);
    shown.tool_calls = std::move(parsed.tool_calls);
    return shown;
  }
  // Until the end, nothing from the start of a possible call on is shown:
  // whether it is a call, and whether every call parses, is known only
  // then, and the joined stream must equal the non-streamed answer.
  static const std::string kOpen = "<tool_call>";
  static const std::string kPythonTag = "<|python_tag|>";
  const size_t first = text.find_first_not_of(" \t\r\n");
  // White space alone may still lead a Llama call, whose answer has no
  // content at all: it is held too.
  if (first == std::string::npos) return shown;
  if ((text[first] == '{' ||
       kPythonTag.compare(0, std::min(kPythonTag.size(), text.size() - first),
                          text, first, kPythonTag.size()) == 0)) {
    return shown;  // maybe Llama's JSON call, which is the whole text
  }
  size_t keep = text.find(kOpen);
  if (keep == std::string::npos) {
    // Hold back a tail that may be the start of a tag, so `<tool` never
    // reaches the client as content.
    keep = text.size();
    for (size_t n = std::min(text.size(), kOpen.size() - 1); n > 0; --n) {
      if (text.compare(text.size() - n, n, kOpen, 0, n) == 0) {
        keep = text.size() - n;
        break;
      }
    }
  }
  shown.content = text.substr(0, keep);
  return shown;
}

Json ChatLogprobs(const ChoiceResult& c, size_t begin, size_t end) {
  Json content = Json::array();
  for (size_t i = begin; i < end && i < c.logprobs.size(); ++i) {
    const std::string& token = c.token_texts[i];
    Json top = Json::array();
    if (i < c.top_logprobs.size()) {
      for (const TopLogprob& t : c.top_logprobs[i]) {
        top.push_back({{"token", t.token},
                       {"logprob", t.logprob},
                       {"bytes", Bytes(t.bytes, t.token)}});
      }
    }
    content.push_back(
        {{"token", token},
         {"logprob", c.logprobs[i]},
         {"bytes",
          Bytes(i < c.token_bytes.size() ? c.token_bytes[i] : std::string(),
                token)},
         {"top_logprobs", top}});
  }
  return {{"content", content}};
}

Json CompletionLogprobs(const ChoiceResult& c, size_t begin, size_t end) {
  end = std::min(end, c.logprobs.size());
  // Byte offsets into the choice's text: a token's own bytes, not those of
  // its decoded text (U+FFFD, 3 bytes, for a token holding part of a
  // character).
  const auto length = [&c](size_t i) {
    return i < c.token_bytes.size() && !c.token_bytes[i].empty()
               ? c.token_bytes[i].size()
               : c.token_texts[i].size();
  };
  size_t offset = 0;
  for (size_t i = 0; i < begin && i < end; ++i) offset += length(i);
  Json tokens = Json::array(), token_logprobs = Json::array(),
       text_offset = Json::array(), top = Json::array();
  for (size_t i = begin; i < end; ++i) {
    tokens.push_back(c.token_texts[i]);
    token_logprobs.push_back(c.logprobs[i]);
    text_offset.push_back(offset);
    offset += length(i);
    // A dict token -> logprob, as the legacy API has it: alternatives that
    // decode to the same text keep the likelier one's value.
    Json alternatives = Json::object();
    if (i < c.top_logprobs.size()) {
      for (const TopLogprob& t : c.top_logprobs[i]) {
        if (!alternatives.contains(t.token)) alternatives[t.token] = t.logprob;
      }
    }
    top.push_back(alternatives);
  }
  return {{"tokens", tokens},
          {"token_logprobs", token_logprobs},
          {"top_logprobs", c.top_logprobs.empty() ? Json() : top},
          {"text_offset", text_offset}};
}

Json ChatResponse(const std::string& id, const std::string& model,
                  int64_t created, const std::vector<ChoiceResult>& choices,
                  bool logprobs, const Json& usage) {
  Json out = Json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    Json message = {{"role", "assistant"}, {"content", c.text}};
    if (c.tool_calls.is_array() && !c.tool_calls.empty()) {
      message["tool_calls"] = c.tool_calls;
      if (c.text.empty()) message["content"] = nullptr;
    }
    out.push_back({{"index", i},
                   {"message", message},
                   {"logprobs",
                    logprobs ? ChatLogprobs(c, 0, c.logprobs.size()) : Json()},
                   {"finish_reason", c.finish_reason}});
  }
  return {{"id", id},           {"object", "chat.completion"},
          {"created", created}, {"model", model},
          {"choices", out},     {"usage", usage}};
}

Json CompletionResponse(const std::string& id, const std::string& model,
                        int64_t created,
                        const std::vector<ChoiceResult>& choices, bool logprobs,
                        const Json& usage) {
  Json out = Json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    const Json lp =
        logprobs ? CompletionLogprobs(c, 0, c.logprobs.size()) : Json();
    out.push_back({{"index", i},
                   {"text", c.text},
                   {"logprobs", lp},
                   {"finish_reason", c.finish_reason}});
  }
  return {{"id", id},           {"object", "text_completion"},
          {"created", created}, {"model", model},
          {"choices", out},     {"usage", usage}};
}

Json ChatChunk(const std::string& id, const std::string& model, int64_t created,
               int64_t index, const Json& delta,
               const std::string& finish_reason, const Json& logprobs) {
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", created},
          {"model", model},
          {"choices",
           Json::array(
               {{{"index", index},
                 {"delta", delta},
                 {"logprobs", logprobs},
                 {"finish_reason",
                  finish_reason.empty() ? Json() : Json(finish_reason)}}})}};
}

Json CompletionChunk(const std::string& id, const std::string& model,
                     int64_t created, int64_t index, const std::string& text,
                     const std::string& finish_reason, const Json& logprobs) {
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", model},
          {"choices",
           Json::array(
               {{{"index", index},
                 {"text", text},
                 {"logprobs", logprobs},
                 {"finish_reason",
                  finish_reason.empty() ? Json() : Json(finish_reason)}}})}};
}

}  // namespace clinrl::serve
