// The llm_judge matcher against a local OpenAI-compatible endpoint started by
// the test (127.0.0.1, ephemeral port): the protocol, retries on malformed
// replies, concurrency, the cache, and failure reporting.
#include "rewards/llm_judge.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "rewards/composite_reward.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

using json = nlohmann::json;

// Plays the judge: a criterion "Mentions <word>" is met when <word> appears
// in the conversation. Criteria containing "flaky" get one malformed reply
// before a good one; "broken" ones never get a valid reply. "blip" ones get
// one HTTP 503 first, "down" ones always 503, "rejected" ones HTTP 400.
class FakeJudge {
 public:
  FakeJudge() {
    for (const char* path :
         {"/v1/chat/completions", "/openai/v1/chat/completions"}) {
      server_.Post(path, [this](const httplib::Request& req,
                                httplib::Response& res) { Handle(req, res); });
    }
    port_ = server_.bind_to_any_port("127.0.0.1");
    EXPECT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~FakeJudge() {
    server_.stop();
    thread_.join();
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  int requests() const { return requests_; }
  int max_active() const { return max_active_; }
  std::string last_auth() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_auth_;
  }
  json last_body() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_body_;
  }
  std::string last_path() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_path_;
  }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    const int active = ++active_;
    int seen = max_active_.load();
    while (active > seen && !max_active_.compare_exchange_weak(seen, active)) {
    }
    requests_++;
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    const json body = json::parse(req.body);
    const std::string prompt = body["messages"][0]["content"];
    const size_t at = prompt.find("# Criterion\n");
    const size_t bracket = prompt.find("] ", at);
    const size_t end = prompt.find('\n', bracket);
    const std::string criterion = prompt.substr(bracket + 2, end - bracket - 2);
    const std::string conversation = prompt.substr(0, at);
    std::string content;
    int attempt;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      attempt = ++attempts_[criterion];
      last_body_ = body;
      last_auth_ = req.get_header_value("Authorization");
      last_path_ = req.path;
    }
    const auto has = [&](const char* word) {
      return criterion.find(word) != std::string::npos;
    };
    if (has("down") || (has("blip") && attempt == 1) || has("rejected")) {
      res.status = has("rejected") ? 400 : 503;
      res.set_content(
          has("rejected") ? "unknown model: judge-x" : "overloaded, try again",
          "text/plain");
      --active_;
      return;
    }
    if (criterion.find("broken") != std::string::npos ||
        (criterion.find("flaky") != std::string::npos && attempt == 1)) {
      content = "I believe the answer is yes.";
    } else {
      const std::string word = criterion.substr(criterion.rfind(' ') + 1);
      const bool met = conversation.find(word) != std::string::npos;
      content =
          "```json\n" +
          json{{"explanation", "checked for " + word}, {"criteria_met", met}}
              .dump() +
          "\n```";
    }
    const json reply = {
        {"id", "x"},
        {"object", "chat.completion"},
        {"choices",
         {{{"index", 0},
           {"message", {{"role", "assistant"}, {"content", content}}}}}}};
    res.set_content(reply.dump(), "application/json");
    --active_;
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> requests_{0};
  std::atomic<int> active_{0};
  std::atomic<int> max_active_{0};
  std::mutex mutex_;
  std::map<std::string, int> attempts_;
  std::string last_auth_;
  std::string last_path_;
  json last_body_;
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

RubricCriterion Crit(const std::string& text, double points) {
  RubricCriterion c;
  c.criterion = text;
  c.points = points;
  return c;
}

std::vector<Message> Conversation(const std::string& reply) {
  return {{"user", "I have chest pain."}, {"assistant", reply}};
}

TEST(LlmJudge, AsksOneQuestionPerCriterionConcurrentlyAndCaches) {
  FakeJudge judge;
  ClearJudgeCache();
  LlmJudgeOptions options;
  options.url = judge.url();
  options.model = "judge-test";
  options.concurrency = 4;
  const std::vector<RubricCriterion> criteria = {
      Crit("Mentions aspirin", 5), Crit("Mentions troponin", 3),
      Crit("Mentions antacids", -4), Crit("Mentions ambulance", 8)};
  const auto conversation = Conversation("Call an ambulance and chew aspirin.");
  const auto verdicts = JudgeCriteria(conversation, criteria, options);
  ASSERT_EQ(verdicts.size(), 4u);
  EXPECT_TRUE(verdicts[0].met);
  EXPECT_FALSE(verdicts[1].met);
  EXPECT_FALSE(verdicts[2].met);
  EXPECT_TRUE(verdicts[3].met);
  EXPECT_EQ(verdicts[0].explanation, "checked for aspirin");
  EXPECT_EQ(judge.requests(), 4);
  EXPECT_GT(judge.max_active(), 1) << "criteria were graded one at a time";
  EXPECT_LE(judge.max_active(), 4);
  const json body = judge.last_body();
  EXPECT_EQ(body["model"], "judge-test");
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_NE(body["messages"][0]["content"].get<std::string>().find(
                "assistant: Call an ambulance"),
            std::string::npos);

  // Same conversation and criteria: all from the cache, no request.
  const auto again = JudgeCriteria(conversation, criteria, options);
  EXPECT_EQ(judge.requests(), 4);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(again[i].met, verdicts[i].met);
  EXPECT_EQ(GetJudgeCacheStats().hits, 4);
  // A different reply is a different key.
  JudgeCriteria(Conversation("Take troponin."), {criteria[1]}, options);
  EXPECT_EQ(judge.requests(), 5);
}

TEST(LlmJudge, RetriesMalformedRepliesAndReportsFailures) {
  FakeJudge judge;
  ClearJudgeCache();
  LlmJudgeOptions options;
  options.url = judge.url();
  options.max_retries = 2;
  const auto conversation = Conversation("aspirin now");
  const auto verdicts = JudgeCriteria(
      conversation, {Crit("flaky: Mentions aspirin", 5)}, options);
  EXPECT_TRUE(verdicts[0].met);
  EXPECT_EQ(judge.requests(), 2);  // one malformed, one good
  try {
    JudgeCriteria(conversation, {Crit("broken: Mentions aspirin", 5)}, options);
    FAIL() << "a judge that never answers properly was accepted";
  } catch (const InternalError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("after 3 attempts"), std::string::npos) << what;
    EXPECT_NE(what.find("criteria_met"), std::string::npos) << what;
    EXPECT_NE(what.find(judge.url()), std::string::npos) << what;
  }
  EXPECT_EQ(judge.requests(), 2 + 3);
}

TEST(LlmJudge, RetriesServerErrorsWithinBoundsAndNotClientErrors) {
  FakeJudge judge;
  ClearJudgeCache();
  LlmJudgeOptions options;
  options.url = judge.url();
  options.max_retries = 2;
  const auto conversation = Conversation("aspirin now");
  // One 503, then the verdict.
  EXPECT_TRUE(
      JudgeCriteria(conversation, {Crit("blip: Mentions aspirin", 5)}, options)
          .at(0)
          .met);
  EXPECT_EQ(judge.requests(), 2);

  // Always 503: max_retries + 1 requests (the chat client's retries; the
  // judge does not ask again on top of them), with back-off of 0.2 + 0.4 s.
  const auto start = std::chrono::steady_clock::now();
  try {
    JudgeCriteria(conversation, {Crit("down: Mentions aspirin", 5)}, options);
    FAIL() << "a judge answering 503 gave a verdict";
  } catch (const InternalError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no answer after 3 attempts"), std::string::npos)
        << what;
    EXPECT_NE(what.find("HTTP 503: overloaded, try again"), std::string::npos)
        << what;
    EXPECT_NE(what.find(judge.url()), std::string::npos) << what;
    EXPECT_NE(what.find("down: Mentions aspirin"), std::string::npos) << what;
  }
  EXPECT_LT(SecondsSince(start), 5.0);
  EXPECT_EQ(judge.requests(), 2 + 3);

  // HTTP 400: the request itself is wrong, so one request and the server's
  // message.
  try {
    JudgeCriteria(conversation, {Crit("rejected: Mentions aspirin", 5)},
                  options);
    FAIL() << "a judge answering 400 gave a verdict";
  } catch (const InternalError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("HTTP 400: unknown model: judge-x"), std::string::npos)
        << what;
  }
  EXPECT_EQ(judge.requests(), 2 + 3 + 1);
}

TEST(LlmJudge, PathPrefixAndV1SuffixReachTheChatEndpoint) {
  FakeJudge judge;
  ClearJudgeCache();
  const auto conversation = Conversation("aspirin now");
  // A base URL ending in /v1, as OpenAI clients write it.
  LlmJudgeOptions options =
      ParseLlmJudgeOptions({{"url", judge.url() + "/v1/"}}, "params.judge");
  EXPECT_TRUE(
      JudgeCriteria(conversation, {Crit("Mentions aspirin", 5)}, options)
          .at(0)
          .met);
  EXPECT_EQ(judge.last_path(), "/v1/chat/completions");
  // A prefix before /v1/chat/completions in `path` is kept.
  options = ParseLlmJudgeOptions(
      {{"url", judge.url()}, {"path", "/openai/v1/chat/completions"}},
      "params.judge");
  EXPECT_TRUE(
      JudgeCriteria(conversation, {Crit("Mentions aspirin", 5)}, options)
          .at(0)
          .met);
  EXPECT_EQ(judge.last_path(), "/openai/v1/chat/completions");
  // Any other path is refused, naming the field.
  try {
    ParseLlmJudgeOptions({{"url", judge.url()}, {"path", "/api/chat"}},
                         "params.judge");
    FAIL() << "a path the chat client cannot reach was accepted";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("params.judge.path"),
              std::string::npos)
        << e.what();
  }
}

TEST(LlmJudge, UnsetApiKeyVariableIsAConfigErrorNamingIt) {
  ClearJudgeCache();
  ::unsetenv("CLINRL_TEST_UNSET_JUDGE_KEY");
  LlmJudgeOptions options;
  options.url = "http://127.0.0.1:1";
  options.api_key_env = "CLINRL_TEST_UNSET_JUDGE_KEY";
  try {
    JudgeCriteria(Conversation("x"), {Crit("Mentions x", 1)}, options);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("CLINRL_TEST_UNSET_JUDGE_KEY"),
              std::string::npos)
        << e.what();
  }
}

TEST(LlmJudge, UnreachableEndpointFailsNamingIt) {
  LlmJudgeOptions options;
  options.url = "http://127.0.0.1:1";  // nothing listens on port 1
  options.max_retries = 1;
  options.timeout_ms = 500;
  try {
    JudgeCriteria(Conversation("x"), {Crit("Mentions x", 1)}, options);
    FAIL();
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos)
        << e.what();
  }
}

TEST(LlmJudge, ParsesRepliesStrictly) {
  EXPECT_TRUE(
      ParseJudgeReply(R"({"explanation": "ok", "criteria_met": true})").met);
  EXPECT_FALSE(
      ParseJudgeReply("Sure!\n```json\n{\"criteria_met\": false}\n```").met);
  EXPECT_THROW(ParseJudgeReply(R"({"criteria_met": "yes"})"), BadRequest);
  EXPECT_THROW(ParseJudgeReply("no json here"), BadRequest);
  EXPECT_THROW(ParseJudgeReply("{broken"), BadRequest);
}

TEST(LlmJudge, RubricPluginThroughTheJudgeWithApiKey) {
  FakeJudge judge;
  ClearJudgeCache();
  ::setenv("CLINRL_TEST_JUDGE_KEY", "sk-test-123", 1);
  auto t = testing::MakeDialogue(
      {"ASK: how long?", "Chew aspirin and call an ambulance."});
  t.reward_spec = testing::OneComponentSpec(
      "rubric",
      {{"matcher", "llm_judge"},
       {"judge",
        {{"url", judge.url()}, {"api_key_env", "CLINRL_TEST_JUDGE_KEY"}}},
       {"rubrics",
        {{{"criterion", "Mentions aspirin"}, {"points", 5}},
         {{"criterion", "Mentions ECG"}, {"points", 5}},
         {{"criterion", "Mentions ambulance"}, {"points", 10}},
         {{"criterion", "Mentions antacid"}, {"points", -5}}}}});
  const RewardResult r = ScoreTrajectory(t);
  ASSERT_FALSE(IsFlagged(r)) << ComponentErrors(r).dump();
  EXPECT_DOUBLE_EQ(r.components.at("rubric").score, 15.0 / 20.0);
  EXPECT_EQ(judge.last_auth(), "Bearer sk-test-123");

  // A judge that cannot be reached makes a flagged component, not a crash.
  t.reward_spec["components"][0]["params"]["judge"] = {
      {"url", "http://127.0.0.1:1"}, {"max_retries", 0}, {"timeout_ms", 300}};
  const RewardResult down = ScoreTrajectory(t);
  EXPECT_TRUE(IsFlagged(down));
  EXPECT_EQ(down.components.at("rubric").details["error"]["code"], "internal");
}

}  // namespace
}  // namespace clinrl::rewards
