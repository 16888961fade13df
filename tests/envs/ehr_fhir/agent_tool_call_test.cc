// The EHR tools (agent_tool_call.h): valid schemas, each tool answered with
// the text its text action gets (the same AgentAction on the same session),
// invalid calls named and counted, and the text actions of the scripted
// policies rewritten as the same calls.
#include "envs/ehr_fhir/agent_tool_call.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "envs/ehr_fhir/ehr_session.h"
#include "envs/tool_calls.h"
#include "tests/envs/ehr_fhir/ehr_test_data.h"

namespace clinrl::envs::ehr {
namespace {

using nlohmann::json;

const std::string kBase = kEmbeddedApiBase;

std::string Call(const std::string& name, const json& arguments) {
  return FormatToolCall({name, arguments});
}

// A text action and a tool call, each run on a fresh session of the
// hand-built record: the replies must be the same text.
struct BothModes {
  std::shared_ptr<EhrRecord> record =
      std::make_shared<EhrRecord>(testing::HandBuiltRecord());
  EhrSession text_session{record, "text"};
  EhrSession tool_session{record, "tool"};

  std::string Text(const std::string& action) {
    return text_session.Run(ParseAgentAction(action));
  }
  std::string Tool(const std::string& call) {
    return tool_session.Run(ParseAgentToolCall(call));
  }
};

TEST(AgentToolCallTest, TheToolsAreValidFunctionSchemas) {
  EXPECT_EQ(ValidateToolSchemas(AgentTools()), "");
  ASSERT_EQ(AgentTools().size(), 3u);
  EXPECT_EQ(AgentTools()[0]["function"]["name"], "fhir_get");
  EXPECT_EQ(AgentTools()[1]["function"]["name"], "fhir_post");
  EXPECT_EQ(AgentTools()[2]["function"]["name"], "finish");
  EXPECT_EQ(AgentTools()[0]["function"]["parameters"]["required"],
            json::array({"url"}));
  EXPECT_EQ(AgentTools()[1]["function"]["parameters"]["required"],
            json::array({"url", "payload"}));
  EXPECT_EQ(AgentTools()[1]["function"]["parameters"]["properties"]["payload"]
                        ["type"],
            "object");
  EXPECT_EQ(
      AgentTools()[2]["function"]["parameters"]["properties"]["answer"]["type"],
      "array");
}

TEST(AgentToolCallTest, FhirGetAnswersAsTheTextGet) {
  BothModes both;
  const std::string read = kBase + "Patient/P2";
  const std::string expected =
      "Here is the response from the GET request:\n"
      "{\"birthDate\":\"1990-01-15\",\"gender\":\"female\",\"id\":\"P2\","
      "\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"MP2\"}],"
      "\"name\":[{\"family\":\"Smithson\",\"given\":[\"Jane\"]}],"
      "\"resourceType\":\"Patient\"}";
  EXPECT_EQ(both.Text("GET " + read), expected);
  EXPECT_EQ(both.Tool(Call("fhir_get", {{"url", read}})), expected);

  const std::string search =
      kBase + "Observation?patient=P1&code=19123-9&_elements=valueQuantity";
  const std::string found = both.Text("GET " + search);
  EXPECT_EQ(
      found,
      "Here is the response from the GET request:\n"
      "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":1,"
      "\"link\":[{\"relation\":\"self\",\"url\":\"http://localhost:8080/"
      "fhir/Observation?patient=P1&code=19123-9&_elements=valueQuantity&"
      "_count=50&_offset=0\"}],\"entry\":[{\"fullUrl\":\"http://"
      "localhost:8080/fhir/Observation/o4\",\"resource\":{\"id\":\"o4\","
      "\"meta\":{\"tag\":[{\"code\":\"SUBSETTED\",\"system\":\"http://"
      "terminology.hl7.org/CodeSystem/v3-ObservationValue\"}]},"
      "\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":1.6}},"
      "\"search\":{\"mode\":\"match\"}}]}");
  EXPECT_EQ(both.Tool(Call("fhir_get", {{"url", search}})), found);

  const std::string missing = kBase + "Patient/P9";
  const std::string not_found =
      "The GET request failed with status 404:\n{\"issue\":[{\"code\":"
      "\"not-found\",\"diagnostics\":\"Resource Patient/P9 is not "
      "known\",\"severity\":\"error\"}],\"resourceType\":"
      "\"OperationOutcome\"}";
  EXPECT_EQ(both.Tool(Call("fhir_get", {{"url", missing}})), not_found);
  EXPECT_EQ(both.Text("GET " + missing), not_found);
  EXPECT_EQ(both.text_session.invalid_actions(), 0);
  EXPECT_EQ(both.tool_session.invalid_actions(), 0);
}

TEST(AgentToolCallTest, FhirPostWritesAsTheTextPost) {
  BothModes both;
  const json order = {
      {"resourceType", "ServiceRequest"},
      {"status", "active"},
      {"intent", "order"},
      {"code",
       {{"coding",
         json::array({{{"system", "http://loinc.org"}, {"code", "2823-3"}}})}}},
      {"subject", {{"reference", "Patient/P1"}}}};
  const std::string url = kBase + "ServiceRequest";
  const std::string created = both.Text("POST " + url + "\n" + order.dump());
  EXPECT_EQ(
      created,
      "POST request accepted and executed successfully. The server "
      "created:\n{\"code\":{\"coding\":[{\"code\":\"2823-3\",\"system\":"
      "\"http://loinc.org\"}]},\"id\":\"w1\",\"intent\":\"order\",\"meta\":"
      "{\"versionId\":\"1\"},\"resourceType\":\"ServiceRequest\","
      "\"status\":\"active\",\"subject\":{\"reference\":\"Patient/P1\"}}");
  EXPECT_EQ(both.Tool(Call("fhir_post", {{"url", url}, {"payload", order}})),
            created);
  EXPECT_EQ(both.tool_session.writes(), both.text_session.writes());
  EXPECT_EQ(both.tool_session.ExecutedWrites(), 1);

  // A write the server rejects: the same error, logged and not executed.
  const json bare = {{"resourceType", "ServiceRequest"}};
  const std::string rejected = both.Text("POST " + url + "\n" + bare.dump());
  EXPECT_EQ(
      rejected,
      "The POST request failed with status 422:\n{\"issue\":[{\"code\":"
      "\"required\",\"diagnostics\":\"ServiceRequest.status: required "
      "field is missing (expected one of draft, active, on-hold, revoked, "
      "completed, entered-in-error, unknown)\",\"severity\":\"error\"}],"
      "\"resourceType\":\"OperationOutcome\"}");
  EXPECT_EQ(both.Tool(Call("fhir_post", {{"url", url}, {"payload", bare}})),
            rejected);
  EXPECT_EQ(both.tool_session.writes(), both.text_session.writes());
  EXPECT_EQ(both.tool_session.ExecutedWrites(), 1);
}

TEST(AgentToolCallTest, FinishCarriesTheAnswerAsTheTextFinish) {
  for (const json& answer :
       {json::array({1.7}), json::array({"S1234567"}), json::array(),
        json::array({5.9, "2023-05-02T08:00:00+00:00"})}) {
    const AgentAction text = ParseAgentAction("FINISH(" + answer.dump() + ")");
    const AgentAction tool =
        ParseAgentToolCall(Call("finish", {{"answer", answer}}));
    ASSERT_EQ(tool.kind, AgentAction::Kind::kFinish) << tool.error;
    EXPECT_EQ(tool.answer, text.answer);
    EXPECT_EQ(tool.answer, answer);
  }
}

// Each invalid call: the reply names the problem and counts as invalid.
TEST(AgentToolCallTest, InvalidCallsNameTheProblemAndCount) {
  BothModes both;
  const std::pair<std::string, std::string> cases[] = {
      {Call("fhir_delete", {{"url", kBase + "Patient/P1"}}),
       "Invalid action: unknown tool 'fhir_delete'; tools: fhir_get, "
       "fhir_post, finish."},
      {Call("fhir_get", json::object()),
       "Invalid action: tool 'fhir_get': missing required argument 'url'."},
      {Call("fhir_get", {{"url", "  "}}),
       "Invalid action: tool 'fhir_get': argument 'url' must be one URL on one "
       "line, got \"  \"."},
      {Call("fhir_get", {{"url", 7}}),
       "Invalid action: tool 'fhir_get': argument 'url' must be of type "
       "string, got number (7)."},
      {Call("fhir_post",
            {{"url", kBase + "Observation"}, {"payload", "{\"a\": 1}"}}),
       "Invalid action: tool 'fhir_post': argument 'payload' must be of type "
       "object, got string (\"{\\\"a\\\": 1}\")."},
      {Call("fhir_post", {{"url", kBase + "Observation"}}),
       "Invalid action: tool 'fhir_post': missing required argument "
       "'payload'."},
      {Call("finish", {{"answer", 1.7}}),
       "Invalid action: tool 'finish': argument 'answer' must be of type "
       "array, got number (1.7)."},
      {Call("fhir_get", {{"url", kBase + "Patient/P1"}, {"mode", "x"}}),
       "Invalid action: tool 'fhir_get': unknown argument 'mode'; arguments: "
       "url."},
      {Call("fhir_get", {{"url", kBase + "Patient/P1"}}) +
           Call("finish", {{"answer", json::array()}}),
       "Invalid action: expected exactly one tool call (fhir_get, fhir_post or "
       "finish) in <tool_call></tool_call> tags, got 2."},
      {"GET " + kBase + "Patient/P1",
       "Invalid action: expected exactly one tool call (fhir_get, fhir_post or "
       "finish) in <tool_call></tool_call> tags, got 0."},
      {"<tool_call>\n{\"name\": \"fhir_get\", \"arguments\": {\"url\": }\n"
       "</tool_call>",
       "Invalid action: tool call 1: invalid JSON (parse error at line 1, "
       "column 43: syntax error while parsing value - unexpected '}'; expected "
       "'[', '{', or a literal)."},
      {Call("fhir_get", {{"url", "http://evil.example/fhir/Patient"}}),
       "Invalid action: URL 'http://evil.example/fhir/Patient' is not on the "
       "FHIR server; use http://localhost:8080/fhir/ as the API base."},
  };
  int64_t invalid = 0;
  for (const auto& [call, expected] : cases) {
    SCOPED_TRACE(call);
    EXPECT_EQ(both.Tool(call), expected);
    EXPECT_EQ(both.tool_session.invalid_actions(), ++invalid);
  }
  EXPECT_TRUE(both.tool_session.writes().empty());
}

TEST(AgentToolCallTest, TextActionsBecomeTheSameCalls) {
  EXPECT_EQ(AgentActionAsToolCall("GET " + kBase + "Patient?identifier=S1"),
            "<tool_call>\n{\"name\": \"fhir_get\", \"arguments\": {\"url\": "
            "\"http://localhost:8080/fhir/Patient?identifier=S1\"}}\n"
            "</tool_call>");
  EXPECT_EQ(
      AgentActionAsToolCall("POST " + kBase +
                            "Observation\n{\"resourceType\": "
                            "\"Observation\", \"status\": \"final\"}"),
      "<tool_call>\n{\"name\": \"fhir_post\", \"arguments\": {\"payload\": "
      "{\"resourceType\": \"Observation\", \"status\": \"final\"}, "
      "\"url\": \"http://localhost:8080/fhir/Observation\"}}\n"
      "</tool_call>");
  EXPECT_EQ(AgentActionAsToolCall("FINISH([1.7, \"x\"])"),
            "<tool_call>\n{\"name\": \"finish\", \"arguments\": {\"answer\": "
            "[1.7, \"x\"]}}\n</tool_call>");
  // Malformed text stays malformed, and so stays invalid in tools mode.
  for (const std::string& bad : std::vector<std::string>{
           "I am not sure what to do.", "POST " + kBase + "Observation\n[1, 2]",
           "FINISH(1.7)"}) {
    EXPECT_EQ(AgentActionAsToolCall(bad), bad);
    EXPECT_EQ(ParseAgentToolCall(bad).kind, AgentAction::Kind::kInvalid);
  }
}

}  // namespace
}  // namespace clinrl::envs::ehr
