#include "rewards/llm_judge.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "core/chat_client.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"

namespace clinrl::rewards {
namespace {

struct VerdictCache {
  std::mutex mutex;
  std::unordered_map<std::string, CriterionVerdict> verdicts;
  std::atomic<int64_t> hits{0};
  std::atomic<int64_t> misses{0};
  std::atomic<int64_t> requests{0};
};

VerdictCache& Cache() {
  static auto* cache = new VerdictCache();
  return *cache;
}

constexpr size_t kMaxCachedVerdicts = 200000;

std::string CacheKey(const LlmJudgeOptions& o, const std::string& conversation,
                     const RubricCriterion& c) {
  // \x1f (unit separator) cannot be confused with text in either part. The
  // judge (endpoint and model) is part of the key: two judges may disagree.
  return o.url + o.path + '\x1f' + o.model + '\x1f' + conversation + '\x1f' +
         c.criterion + '\x1f' + fmt::format("{}", c.points);
}

std::string RenderConversation(const std::vector<Message>& conversation) {
  std::string out;
  for (const auto& m : conversation) {
    if (!out.empty()) out += "\n\n";
    out += m.role + ": " + m.content;
  }
  return out;
}

// ChatClient posts to <base URL>/v1/chat/completions (keeping a /v1 the base
// URL already ends in), so a judge path must end in this; what comes before
// it is moved into the base URL.
constexpr std::string_view kChatPath = "/v1/chat/completions";

void CheckJudgePath(const std::string& judge_path, const std::string& field) {
  if (judge_path.size() < kChatPath.size() ||
      judge_path.compare(judge_path.size() - kChatPath.size(), kChatPath.size(),
                         kChatPath) != 0) {
    throw BadRequest(fmt::format(
        "{}.path: expected a path ending in {} (a prefix before it is kept), "
        "got \"{}\"",
        field, kChatPath, judge_path));
  }
}

ChatEndpoint JudgeEndpoint(const LlmJudgeOptions& options,
                           const std::string& field) {
  CheckJudgePath(options.path, field);
  std::string url = options.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  ChatEndpoint endpoint;
  endpoint.url =
      url + options.path.substr(0, options.path.size() - kChatPath.size());
  endpoint.model = options.model;
  endpoint.api_key_env = options.api_key_env;
  endpoint.timeout_ms = options.timeout_ms;
  endpoint.max_retries = options.max_retries;
  return endpoint;
}

}  // namespace

LlmJudgeOptions ParseLlmJudgeOptions(const nlohmann::json& judge,
                                     const std::string& path) {
  const wire::Fields f(judge, path);
  LlmJudgeOptions o;
  o.url = f.String("url");
  if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
    throw BadRequest(fmt::format(
        "{}.url: expected an http:// or https:// base URL, got \"{}\"", path,
        o.url));
  }
  o.path = f.String("path", o.path);
  CheckJudgePath(o.path, path);
  o.model = f.String("model", o.model);
  o.api_key_env = f.String("api_key_env", o.api_key_env);
  o.max_retries = f.Int("max_retries", o.max_retries);
  o.concurrency = f.Int("concurrency", o.concurrency);
  o.timeout_ms = f.Int("timeout_ms", o.timeout_ms);
  o.temperature = f.Double("temperature", o.temperature);
  o.max_tokens = f.Int("max_tokens", o.max_tokens);
  if (o.max_retries < 0 || o.concurrency < 1 || o.timeout_ms < 1 ||
      o.max_tokens < 1) {
    throw BadRequest(fmt::format(
        "{}: expected max_retries >= 0, concurrency >= 1, timeout_ms >= 1, "
        "max_tokens >= 1; got {}, {}, {}, {}",
        path, o.max_retries, o.concurrency, o.timeout_ms, o.max_tokens));
  }
  return o;
}

std::string JudgePrompt(const std::vector<Message>& conversation,
                        const RubricCriterion& criterion) {
  return fmt::format(
      "You are grading the last assistant reply in a health conversation "
      "against one criterion written by a physician.\n\n"
      "# Conversation\n{}\n\n"
      "# Criterion\n[{:+g} points] {}\n\n"
      "# How to answer\n"
      "Decide whether the LAST assistant reply meets the criterion. Some "
      "criteria describe something a reply should NOT do (they carry "
      "negative points): for those, answer whether the reply does that "
      "undesirable thing, so criteria_met = true means it does. A criterion "
      "that gives examples (\"such as\", \"for example\") is met when the "
      "reply meets its intent; it need not list every example. A required "
      "element that is only partly present is not met.\n"
      "Answer with one JSON object and nothing else:\n"
      "{{\"explanation\": \"<one or two sentences>\", \"criteria_met\": "
      "<true or false>}}",
      RenderConversation(conversation), criterion.points, criterion.criterion);
}

CriterionVerdict ParseJudgeReply(const std::string& content) {
  const size_t open = content.find('{');
  const size_t close = content.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    throw BadRequest(fmt::format(
        "judge reply: expected a JSON object with a boolean \"criteria_met\", "
        "got \"{}\"",
        content.substr(0, 120)));
  }
  const auto parsed = nlohmann::json::parse(
      content.substr(open, close - open + 1), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    throw BadRequest(fmt::format("judge reply: not valid JSON: \"{}\"",
                                 content.substr(0, 120)));
  }
  auto it = parsed.find("criteria_met");
  if (it == parsed.end() || !it->is_boolean()) {
    throw BadRequest(
        fmt::format("judge reply.criteria_met: expected a boolean, got {}",
                    it == parsed.end() ? std::string("nothing") : it->dump()));
  }
  CriterionVerdict v;
  v.met = it->get<bool>();
  auto e = parsed.find("explanation");
  if (e != parsed.end() && e->is_string())
    v.explanation = e->get<std::string>();
  return v;
}

namespace {

// Asks until the judge's text is a verdict, at most max_retries + 1 times.
// The chat client's errors (no answer after its retries, HTTP 4xx, a response
// that is not a chat completion) end the criterion at once: asking again
// would repeat them.
CriterionVerdict AskJudge(ChatClient& chat,
                          const std::vector<Message>& conversation,
                          const RubricCriterion& criterion,
                          const LlmJudgeOptions& options) {
  const nlohmann::json body = {
      {"messages",
       {{{"role", "user"}, {"content", JudgePrompt(conversation, criterion)}}}},
      {"temperature", options.temperature},
      {"max_tokens", options.max_tokens}};
  std::string last_problem;
  for (int64_t attempt = 0; attempt <= options.max_retries; ++attempt) {
    Cache().requests++;
    ChatCompletion reply;
    try {
      reply = chat.Complete(body);
    } catch (const Error& e) {
      throw InternalError(fmt::format("llm_judge: criterion \"{}\": {}",
                                      criterion.criterion, e.what()));
    }
    try {
      return ParseJudgeReply(reply.content);
    } catch (const BadRequest& e) {
      last_problem = e.what();
    }
    CLINRL_LOG_DEBUG("llm_judge attempt {} for \"{}\": {}", attempt + 1,
                     criterion.criterion, last_problem);
  }
  throw InternalError(fmt::format(
      "llm_judge {}: no valid verdict for criterion \"{}\" after {} "
      "attempts; last problem: {}",
      chat.where(), criterion.criterion, options.max_retries + 1,
      last_problem));
}

}  // namespace

std::vector<CriterionVerdict> JudgeCriteria(
    const std::vector<Message>& conversation,
    const std::vector<RubricCriterion>& criteria,
    const LlmJudgeOptions& options) {
  const std::string rendered = RenderConversation(conversation);
  std::vector<CriterionVerdict> verdicts(criteria.size());
  std::vector<size_t> todo;
  {
    VerdictCache& cache = Cache();
    std::lock_guard<std::mutex> lock(cache.mutex);
    for (size_t i = 0; i < criteria.size(); ++i) {
      auto it = cache.verdicts.find(CacheKey(options, rendered, criteria[i]));
      if (it != cache.verdicts.end()) {
        verdicts[i] = it->second;
        cache.hits++;
      } else {
        todo.push_back(i);
        cache.misses++;
      }
    }
  }
  if (todo.empty()) return verdicts;

  // One chat client per grading thread (a client belongs to one thread),
  // made here so that an unset api_key_env is a ConfigError of the call.
  // At least one: JudgeCriteria is public and may get unchecked options.
  const size_t n_threads = std::max<size_t>(
      1, std::min<size_t>(static_cast<size_t>(std::max<int64_t>(
                              options.concurrency, 1)),
                          todo.size()));
  const ChatEndpoint endpoint = JudgeEndpoint(options, "params.judge");
  std::vector<std::unique_ptr<ChatClient>> chats;
  for (size_t t = 0; t < n_threads; ++t) {
    chats.push_back(std::make_unique<ChatClient>(endpoint, "params.judge"));
  }

  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  std::string first_error;
  auto worker = [&](ChatClient& chat) {
    for (size_t k = next++; k < todo.size(); k = next++) {
      const size_t i = todo[k];
      try {
        verdicts[i] = AskJudge(chat, conversation, criteria[i], options);
        VerdictCache& cache = Cache();
        std::lock_guard<std::mutex> lock(cache.mutex);
        if (cache.verdicts.size() >= kMaxCachedVerdicts) cache.verdicts.clear();
        cache.verdicts[CacheKey(options, rendered, criteria[i])] = verdicts[i];
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (first_error.empty()) first_error = e.what();
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n_threads; ++t) {
    threads.emplace_back(worker, std::ref(*chats[t]));
  }
  worker(*chats[0]);
  for (auto& t : threads) t.join();
  if (!first_error.empty()) throw InternalError(first_error);
  return verdicts;
}

JudgeCacheStats GetJudgeCacheStats() {
  VerdictCache& cache = Cache();
  return {cache.hits.load(), cache.misses.load(), cache.requests.load()};
}

void ClearJudgeCache() {
  VerdictCache& cache = Cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.verdicts.clear();
  cache.hits = 0;
  cache.misses = 0;
  cache.requests = 0;
}

}  // namespace clinrl::rewards
