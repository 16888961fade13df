#include "envs/ehr_fhir/agent_action.h"

#include <fmt/format.h>

#include <cctype>

#include "envs/ehr_fhir/grading/task_grader.h"

namespace clinrl::envs::ehr {
namespace {

std::string Trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// Models often wrap the action in a Markdown code fence.
std::string StripFence(const std::string& s) {
  if (s.rfind("```", 0) != 0) return s;
  const size_t nl = s.find('\n');
  const size_t end = s.rfind("```");
  if (nl == std::string::npos || end <= nl) return s;
  return Trim(s.substr(nl + 1, end - nl - 1));
}

}  // namespace

AgentAction ParseAgentAction(const std::string& raw) {
  const std::string text = StripFence(Trim(raw));
  AgentAction a;
  if (text.rfind("GET ", 0) == 0) {
    a.url = Trim(text.substr(4));
    // A space inside a value ("name=Jane Doe") is what the agent meant; a
    // second line is not part of a GET.
    if (a.url.empty() || a.url.find('\n') != std::string::npos) {
      a.error = "GET expects one URL on the same line: GET url?param=value&...";
      return a;
    }
    a.kind = AgentAction::Kind::kGet;
    return a;
  }
  if (text.rfind("POST ", 0) == 0) {
    const size_t nl = text.find('\n');
    a.url = Trim(
        text.substr(5, nl == std::string::npos ? std::string::npos : nl - 5));
    a.body = nl == std::string::npos ? "" : Trim(text.substr(nl + 1));
    if (a.url.empty() || a.body.empty()) {
      a.error =
          "POST expects the URL on the first line and a JSON body on the "
          "following lines";
      return a;
    }
    a.kind = AgentAction::Kind::kPost;
    return a;
  }
  if (text.rfind("FINISH(", 0) == 0) {
    a.answer = ParseFinish(text);
    if (!a.answer.is_array()) {
      a.error = "FINISH expects a JSON list: FINISH([answer1, answer2, ...])";
      return a;
    }
    a.kind = AgentAction::Kind::kFinish;
    return a;
  }
  a.error =
      "the reply must be exactly one of: GET url?params, POST url followed "
      "by a JSON body, or FINISH([answers])";
  return a;
}

bool SplitApiUrl(const std::string& url, const std::string& api_base,
                 std::string* path, std::string* query, std::string* error) {
  std::string rest = url;
  if (rest.rfind(api_base, 0) == 0) {
    rest = rest.substr(api_base.size());
  } else if (rest.rfind("http://", 0) == 0 || rest.rfind("https://", 0) == 0) {
    *error = fmt::format(
        "URL '{}' is not on the FHIR server; use {} as the "
        "API base",
        url, api_base);
    return false;
  }
  const size_t q = rest.find('?');
  *path = rest.substr(0, q);
  *query = q == std::string::npos ? "" : rest.substr(q + 1);
  return true;
}

}  // namespace clinrl::envs::ehr
