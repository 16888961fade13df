// The OpenAI HTTP API as clinrl serves it: request bodies of
// /v1/chat/completions and /v1/completions read and checked into one
// internal request, and the response, stream chunk and error objects built
// back in OpenAI's shapes, so the official `openai` client works unchanged.
//
// Parsing throws BadRequest whose message starts with the field's name
// ("temperature: -1 is not allowed; expected 0 <= temperature <= 2"), and
// ErrorBody turns that prefix into OpenAI's `param`. Fields OpenAI defines
// but clinrl does not implement (penalties, logit_bias, echo) are refused by
// name rather than silently ignored; fields it does not know are
// ignored, as OpenAI's own server ignores extra client options.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "policy/generator.h"
#include "policy/sampler.h"

namespace clinrl::serve {

struct CompletionRequest {
  bool chat = true;                  // /v1/chat/completions or /v1/completions
  std::string model;                 // as the client named it
  nlohmann::ordered_json messages;   // chat: the checked messages
  nlohmann::ordered_json tools;      // chat: null or the tools array
  std::vector<std::string> prompts;  // completions: one or more prompts
  policy::SamplingParams sampling;   // temperature, top_p, max, stop, seed
  bool has_seed = false;
  int64_t n = 1;
  bool stream = false;
  bool logprobs = false;
  int64_t top_logprobs = 0;    // chat top_logprobs, completions logprobs
  bool include_usage = false;  // stream_options.include_usage
};

// The default completion length when the request names none.
constexpr int64_t kDefaultMaxTokens = 256;
// The most alternatives a token may list (OpenAI's chat limit, vLLM's
// default max_logprobs).
constexpr int64_t kMaxTopLogprobs = 20;

// Throw BadRequest naming the field at fault.
CompletionRequest ParseChatRequest(const nlohmann::json& body);
CompletionRequest ParseCompletionRequest(const nlohmann::json& body);

// {"error": {"message", "type", "param", "code"}}. `param` is taken from a
// message of the form "field: ..." (null when there is none).
nlohmann::json ErrorBody(const std::string& message, const std::string& type,
                         const std::string& code);
// The field a "field: ..." message names, or "".
std::string ParamOf(const std::string& message);

// "stop" or "length" (or "tool_calls", decided by the caller).
std::string OpenAiFinishReason(policy::FinishReason reason);

// The text of a finished choice: cut before the first stop string.
std::string CutAtStop(const std::string& text,
                      const std::vector<std::string>& stops);

// The tool calls of a finished choice's text, read by the project's one
// reader (core/tool_call_text.h: Qwen-style `<tool_call>` blocks, or
// Llama's JSON call as the whole text): the OpenAI tool_calls array
// (arguments as a JSON string, ids "<id_prefix>_<n>") and the text before
// the first block. A text whose calls do not all parse has no calls and is
// all content, as vLLM's hermes parser answers it.
struct ChoiceToolCalls {
  nlohmann::json tool_calls = nlohmann::json::array();
  std::string content;
};
ChoiceToolCalls ChoiceToolCallsOf(const std::string& text,
                                  const std::string& id_prefix);

// What a streamed chat with tools shows of `text`, its choice's text so far
// (a prefix of the final text): while running, the content up to the first
// `<tool_call>` (held back over a tail that may begin one, and wholly when
// the text starts as Llama's JSON call could) and no calls, since whether
// every call parses is known only at the end; with `finished`, exactly
// ChoiceToolCallsOf(text). So the deltas a client joins equal the
// non-streamed answer.
struct StreamedToolCalls {
  std::string content;
  nlohmann::json tool_calls = nlohmann::json::array();
};
StreamedToolCalls StreamedToolCallsOf(const std::string& text, bool finished,
                                      const std::string& id_prefix);

// One of a token's most likely alternatives.
struct TopLogprob {
  std::string token;  // decoded: a lone part of a character shows as U+FFFD
  float logprob = 0;
  std::string bytes;  // the token's raw bytes; empty: those of `token`
};

// One finished choice, ready for a response.
struct ChoiceResult {
  std::string text;
  std::string finish_reason;
  nlohmann::json tool_calls;  // null, or an array (chat only)
  // Per token, filled when the request asked for log-probs.
  std::vector<std::string> token_texts;
  std::vector<std::string> token_bytes;  // raw; empty: those of the texts
  std::vector<float> logprobs;
  std::vector<std::vector<TopLogprob>> top_logprobs;  // empty, or per token
};

// The log-probs of tokens [begin, end) of a choice: chat's
// {"content": [{token, logprob, bytes, top_logprobs}]}, and the legacy
// completions' {tokens, token_logprobs, top_logprobs, text_offset} (byte
// offsets into the choice's text; top_logprobs null when none were asked).
nlohmann::json ChatLogprobs(const ChoiceResult& c, size_t begin, size_t end);
nlohmann::json CompletionLogprobs(const ChoiceResult& c, size_t begin,
                                  size_t end);

nlohmann::json Usage(int64_t prompt_tokens, int64_t completion_tokens);
nlohmann::json ChatResponse(const std::string& id, const std::string& model,
                            int64_t created,
                            const std::vector<ChoiceResult>& choices,
                            bool logprobs, const nlohmann::json& usage);
nlohmann::json CompletionResponse(const std::string& id,
                                  const std::string& model, int64_t created,
                                  const std::vector<ChoiceResult>& choices,
                                  bool logprobs, const nlohmann::json& usage);
// A streamed chunk of one choice: `delta` is the chat delta object (or, for
// completions, {"text": ...}); `finish_reason` empty while running;
// `logprobs` those of the tokens the chunk brings, or null.
nlohmann::json ChatChunk(const std::string& id, const std::string& model,
                         int64_t created, int64_t index,
                         const nlohmann::json& delta,
                         const std::string& finish_reason,
                         const nlohmann::json& logprobs = nullptr);
nlohmann::json CompletionChunk(const std::string& id, const std::string& model,
                               int64_t created, int64_t index,
                               const std::string& text,
                               const std::string& finish_reason,
                               const nlohmann::json& logprobs = nullptr);

}  // namespace clinrl::serve
