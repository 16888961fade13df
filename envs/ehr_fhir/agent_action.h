// The MedAgentBench action grammar, one action per turn:
//   GET url?param=value&...
//   POST url            (first line), then the JSON body on the next lines
//   FINISH([answer1, answer2, ...])
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace clinrl::envs::ehr {

// The grammar as the agent is told it: the EnvSpec's action_format of the
// EHR envs and the head of their prompts.
inline constexpr const char* kAgentActionFormat =
    "One action per turn, nothing else in the reply:\n"
    "GET url?param_name1=param_value1&param_name2=param_value2\n"
    "POST url\n{JSON body}\n"
    "FINISH([answer1, answer2, ...])   (a JSON list)";

struct AgentAction {
  enum class Kind { kGet, kPost, kFinish, kInvalid };
  Kind kind = Kind::kInvalid;
  std::string url;        // GET / POST, as written
  std::string body;       // POST
  nlohmann::json answer;  // FINISH: the array
  std::string error;      // kInvalid: what was wrong, for the agent
};

AgentAction ParseAgentAction(const std::string& text);

// Splits `url` against the API base the agent was given: "Observation?x=1"
// -> path "Observation", query "x=1". Returns false (and says why in
// `error`) for a URL on another server.
bool SplitApiUrl(const std::string& url, const std::string& api_base,
                 std::string* path, std::string* query, std::string* error);

}  // namespace clinrl::envs::ehr
