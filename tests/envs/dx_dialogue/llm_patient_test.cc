#include "envs/dx_dialogue/llm_patient.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "envs/env_registry.h"

namespace clinrl::envs::dx {
namespace {

using nlohmann::json;

// A local OpenAI-compatible endpoint whose next replies the test sets.
class FakeChatServer {
 public:
  FakeChatServer() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req,
                                                httplib::Response& res) {
      std::unique_lock<std::mutex> lock(mu_);
      requests_.push_back(json::parse(req.body));
      last_auth_ = req.get_header_value("Authorization");
      if (hang_) {
        // Never answers in time; released (at the latest) by the destructor.
        released_.wait_for(lock, std::chrono::seconds(5),
                           [this] { return !hang_; });
        return;
      }
      const bool fail = failures_left_ != 0;
      if (failures_left_ > 0) --failures_left_;
      if (fail) {
        res.status = status_;
        res.set_content(error_body_, "text/plain");
        return;
      }
      const json reply = {
          {"choices",
           {{{"message", {{"role", "assistant"}, {"content", content_}}}}}}};
      res.set_content(reply.dump(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    EXPECT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~FakeChatServer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hang_ = false;
    }
    released_.notify_all();
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  // Answers `content`, or every request with `status` when it is not 200.
  void Reply(const std::string& content, int status = 200) {
    std::lock_guard<std::mutex> lock(mu_);
    content_ = content;
    Fail(status == 200 ? 0 : -1, status, "overloaded");
  }
  // The next `count` requests (all when -1) get `status` and `body`.
  void FailNext(int count, int status, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu_);
    Fail(count, status, body);
  }
  void Hang() {
    std::lock_guard<std::mutex> lock(mu_);
    hang_ = true;
  }
  std::vector<json> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::string last_auth() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_auth_;
  }

 private:
  void Fail(int count, int status, const std::string& body) {
    failures_left_ = count;
    status_ = status;
    error_body_ = body;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  std::mutex mu_;
  std::condition_variable released_;
  std::string content_ = "Yes.";
  int failures_left_ = 0;
  int status_ = 200;
  std::string error_body_;
  bool hang_ = false;
  std::vector<json> requests_;
  std::string last_auth_;
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

const ClinicalCase& SomeCase() {
  return CaseBank::For(KnowledgeBase::Default())->Get("test", 2);
}

LlmPatientOptions Options(const std::string& endpoint,
                          json more = json::object()) {
  json options = {{"kind", "llm"},
                  {"endpoint", endpoint},
                  {"model", "patient-7b"},
                  {"timeout_ms", 2000}};
  options.update(more);
  return LlmPatientOptions::FromJson(options, "options.patient");
}

TEST(LlmPatientTest, UsesTheModelsWordingAndKeepsRuleFacts) {
  FakeChatServer server;
  const auto kb = KnowledgeBase::Default();
  const ClinicalCase& c = SomeCase();
  LlmPatient patient(kb, c, {}, Options(server.endpoint()));
  const std::string cc = kb->findings[c.chief_complaint].name;
  server.Reply("Yes doctor, it started yesterday.");
  const PatientReply r = patient.Answer("Do you have " + cc + "?");
  EXPECT_EQ(r.text, "Yes doctor, it started yesterday.");
  EXPECT_EQ(patient.last_fallback(), "");
  ASSERT_EQ(r.revealed.size(), 1u);
  EXPECT_EQ(r.revealed[0]["answer"], "yes");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["model"], "patient-7b");
  const std::string system = requests[0]["messages"][0]["content"];
  EXPECT_EQ(system, patient.system_prompt());
  // The model is never told the diagnosis, its code, or exam/test facts.
  const Condition& truth = kb->conditions[c.condition];
  EXPECT_EQ(system.find(truth.name), std::string::npos);
  EXPECT_EQ(system.find(truth.icd10), std::string::npos);
  for (const auto& a : truth.aliases) {
    EXPECT_EQ(
        (" " + NormalizeText(system) + " ").find(" " + NormalizeText(a) + " "),
        std::string::npos)
        << a;
  }
  EXPECT_EQ(requests[0]["messages"].back()["content"],
            "Do you have " + cc + "?");
}

TEST(LlmPatientTest, FallsBackWhenTheModelVolunteersUnaskedFacts) {
  FakeChatServer server;
  const auto kb = KnowledgeBase::Default();
  const ClinicalCase& c = SomeCase();
  LlmPatient patient(kb, c, {}, Options(server.endpoint()));
  RulePatient rules(kb, c, {});
  // Ask about one finding, answer about another.
  const int asked = kb->FindingIndex("loss of smell");
  const int other = kb->FindingIndex("headache");
  server.Reply("No, but I do have a headache.");
  const PatientReply r = patient.Answer(kb->findings[asked].name);
  EXPECT_EQ(r.text, rules.Answer(kb->findings[asked].name).text);
  EXPECT_NE(patient.last_fallback().find(kb->findings[other].name),
            std::string::npos);

  server.Reply("I think I have " + kb->conditions[c.condition].name + ".");
  patient.Answer("fever?");
  EXPECT_NE(patient.last_fallback().find("names a condition"),
            std::string::npos);
}

TEST(LlmPatientTest, FallsBackOnHttpErrorsAndDeadEndpoints) {
  const auto kb = KnowledgeBase::Default();
  const ClinicalCase& c = SomeCase();
  RulePatient rules(kb, c, {});
  {
    FakeChatServer server;
    server.Reply("", 503);
    LlmPatient patient(kb, c, {}, Options(server.endpoint()));
    EXPECT_EQ(patient.Answer("cough?").text, rules.Answer("cough?").text);
    EXPECT_NE(patient.last_fallback().find("HTTP 503: overloaded"),
              std::string::npos)
        << patient.last_fallback();
    EXPECT_EQ(server.requests().size(), 2u) << "max_retries is 1 by default";
  }
  std::string dead;
  {
    FakeChatServer server;  // bound, then closed: nobody listens there now
    dead = server.endpoint();
  }
  LlmPatient patient(kb, c, {}, Options(dead));
  EXPECT_EQ(patient.Answer("cough?").text, rules.Answer("cough?").text);
  EXPECT_NE(patient.last_fallback().find("no answer after 2 attempts"),
            std::string::npos)
      << patient.last_fallback();
  EXPECT_NE(patient.last_fallback().find(dead), std::string::npos)
      << patient.last_fallback();
}

TEST(LlmPatientTest, RetriesATransientFailureThenUsesTheReply) {
  FakeChatServer server;
  const auto kb = KnowledgeBase::Default();
  const ClinicalCase& c = SomeCase();
  LlmPatient patient(kb, c, {}, Options(server.endpoint()));
  server.Reply("Not that I know of.");
  server.FailNext(1, 429, "slow down");
  EXPECT_EQ(patient.Answer("any coughing blood?").text, "Not that I know of.");
  EXPECT_EQ(patient.last_fallback(), "");
  EXPECT_EQ(server.requests().size(), 2u);

  // With max_retries 0 the same blip is a fallback after one request.
  LlmPatient single(kb, c, {},
                    Options(server.endpoint(), {{"max_retries", 0}}));
  server.FailNext(1, 502, "bad gateway");
  RulePatient rules(kb, c, {});
  EXPECT_EQ(single.Answer("cough?").text, rules.Answer("cough?").text);
  EXPECT_NE(single.last_fallback().find("HTTP 502: bad gateway"),
            std::string::npos)
      << single.last_fallback();
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(LlmPatientTest, AHungEndpointCostsOneBoundedWaitPerEpisode) {
  FakeChatServer server;
  server.Hang();
  const auto kb = KnowledgeBase::Default();
  const ClinicalCase& c = SomeCase();
  RulePatient rules(kb, c, {});
  LlmPatient patient(kb, c, {},
                     Options(server.endpoint(), {{"timeout_ms", 300}}));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(patient.Answer("cough?").text, rules.Answer("cough?").text);
  // Two attempts of 0.3 s and a back-off of 0.2 s; far below 2 s.
  EXPECT_LT(SecondsSince(start), 2.0);
  EXPECT_NE(patient.last_fallback().find("no answer after 2 attempts"),
            std::string::npos)
      << patient.last_fallback();
  EXPECT_EQ(server.requests().size(), 2u);

  // The rest of the episode does not wait again.
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(patient.Answer("fever?").text, rules.Answer("fever?").text);
  EXPECT_LT(SecondsSince(start), 0.25);
  EXPECT_NE(patient.last_fallback().find("earlier in this episode"),
            std::string::npos)
      << patient.last_fallback();
  EXPECT_EQ(server.requests().size(), 2u);

  // A new episode (a new patient) asks again.
  LlmPatient next(
      kb, c, {},
      Options(server.endpoint(), {{"timeout_ms", 300}, {"max_retries", 0}}));
  next.Answer("cough?");
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(LlmPatientTest, HttpClientErrorNamesTheServersMessageWithoutRetrying) {
  FakeChatServer server;
  const auto kb = KnowledgeBase::Default();
  const ClinicalCase& c = SomeCase();
  RulePatient rules(kb, c, {});
  LlmPatient patient(kb, c, {}, Options(server.endpoint()));
  server.FailNext(1, 400, "max_tokens: at most 32 for this model");
  EXPECT_EQ(patient.Answer("cough?").text, rules.Answer("cough?").text);
  EXPECT_NE(patient.last_fallback().find(
                "HTTP 400: max_tokens: at most 32 for this model"),
            std::string::npos)
      << patient.last_fallback();
  EXPECT_EQ(server.requests().size(), 1u);
  // Known at once, so the next question still asks.
  server.Reply("Not that I know of.");
  EXPECT_EQ(patient.Answer("any coughing blood?").text, "Not that I know of.");
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(LlmPatientTest, UnsetApiKeyVariableFallsBackNamingIt) {
  FakeChatServer server;
  const auto kb = KnowledgeBase::Default();
  const ClinicalCase& c = SomeCase();
  ::unsetenv("CLINRL_TEST_UNSET_PATIENT_KEY");
  LlmPatient patient(
      kb, c, {},
      Options(server.endpoint(),
              {{"api_key_env", "CLINRL_TEST_UNSET_PATIENT_KEY"}}));
  RulePatient rules(kb, c, {});
  EXPECT_EQ(patient.Answer("cough?").text, rules.Answer("cough?").text);
  EXPECT_NE(patient.last_fallback().find("CLINRL_TEST_UNSET_PATIENT_KEY"),
            std::string::npos)
      << patient.last_fallback();
  EXPECT_EQ(server.requests().size(), 0u);

  ::setenv("CLINRL_TEST_PATIENT_KEY", "sk-patient", 1);
  LlmPatient keyed(
      kb, c, {},
      Options(server.endpoint(), {{"api_key_env", "CLINRL_TEST_PATIENT_KEY"}}));
  server.Reply("Not that I know of.");
  EXPECT_EQ(keyed.Answer("any coughing blood?").text, "Not that I know of.");
  EXPECT_EQ(server.last_auth(), "Bearer sk-patient");
}

TEST(LlmPatientTest, EnvUsesTheEndpointFromItsOptions) {
  FakeChatServer server;
  auto env = EnvRegistry::Global().Create(
      "dx_dialogue",
      {{"patient",
        {{"kind", "llm"}, {"endpoint", server.endpoint() + "/v1"}}}});
  ResetRequest r;
  r.split = "test";
  r.task_index = 2;
  env->Reset(r);
  server.Reply("Not that I know of.");
  StepResult s = env->Step("ASK: any coughing blood?");
  EXPECT_EQ(s.observation[0].content, "Not that I know of.");
  EXPECT_FALSE(s.info.contains("patient_fallback"));
  server.Reply("Yes, and also a fever and a rash.");
  s = env->Step("ASK: cough?");
  EXPECT_TRUE(s.info.contains("patient_fallback"));
  EXPECT_EQ(server.requests().size(), 2u);
  // The second request carries the first exchange as history.
  EXPECT_EQ(server.requests()[1]["messages"].size(), 4u);
}

TEST(LlmPatientTest, OptionsAreValidated) {
  EXPECT_THROW(LlmPatientOptions::FromJson({{"endpoint", "127.0.0.1:80"}}, "p"),
               ConfigError);
  EXPECT_THROW(LlmPatientOptions::FromJson(
                   {{"endpoint", "http://x"}, {"timeout_ms", 0}}, "p"),
               ConfigError);
  EXPECT_THROW(LlmPatientOptions::FromJson(
                   {{"endpoint", "http://x"}, {"temprature", 0}}, "p"),
               ConfigError);
  EXPECT_THROW(LlmPatientOptions::FromJson(
                   {{"endpoint", "http://x"}, {"max_retries", -1}}, "p"),
               ConfigError);
}

}  // namespace
}  // namespace clinrl::envs::dx
