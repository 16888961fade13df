#include "envs/dx_dialogue/llm_patient.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "envs/env_registry.h"

namespace clinrl::envs::dx {
namespace {

using nlohmann::json;

// A local OpenAI-compatible endpoint whose next reply the test sets.
class FakeChatServer {
 public:
  FakeChatServer() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req,
                                                httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(json::parse(req.body));
      if (status_ != 200) {
        res.status = status_;
        res.set_content("overloaded", "text/plain");
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
    server_.stop();
    thread_.join();
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  void Reply(const std::string& content, int status = 200) {
    std::lock_guard<std::mutex> lock(mu_);
    content_ = content;
    status_ = status;
  }
  std::vector<json> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  std::mutex mu_;
  std::string content_ = "Yes.";
  int status_ = 200;
  std::vector<json> requests_;
};

const ClinicalCase& SomeCase() {
  return CaseBank::For(KnowledgeBase::Default())->Get("test", 2);
}

LlmPatientOptions Options(const std::string& endpoint) {
  return LlmPatientOptions::FromJson({{"kind", "llm"},
                                      {"endpoint", endpoint},
                                      {"model", "patient-7b"},
                                      {"timeout_ms", 2000}},
                                     "options.patient");
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
    EXPECT_NE(patient.last_fallback().find("HTTP 503"), std::string::npos);
  }
  std::string dead;
  {
    FakeChatServer server;  // bound, then closed: nobody listens there now
    dead = server.endpoint();
  }
  LlmPatient patient(kb, c, {}, Options(dead));
  EXPECT_EQ(patient.Answer("cough?").text, rules.Answer("cough?").text);
  EXPECT_NE(patient.last_fallback().find("failed"), std::string::npos);
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
}

}  // namespace
}  // namespace clinrl::envs::dx
