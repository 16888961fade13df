// format: every policy turn follows the env's action grammar. Score: the
// fraction of policy turns that do (mode "fraction", the default) or 1/0
// (mode "all"); no policy turn scores 0. Grammars:
//   dx_dialogue  every non-blank line is "ACTION: text" with ACTION one of
//                params.actions (default ASK, EXAM, TEST, DIAGNOSIS,
//                DISPOSITION), case-insensitive, text non-empty;
//   json         the turn is one JSON object (params.required_keys present);
//   regex        the trimmed turn fully matches params.pattern;
//   tool_call    the turn holds exactly one well-formed tool call, as the
//                envs read it (core/tool_call_text.h: one Qwen <tool_call>
//                block, or Llama's {"name", "parameters"} JSON call), its
//                arguments a JSON object or a string holding one; checking
//                the call against the env's tools is the env's business.
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tool_call_text.h"
#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/regex_cache.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

std::vector<std::string> StringList(const wire::Fields& f, const char* key,
                                    std::vector<std::string> fallback) {
  if (!f.Has(key)) return fallback;
  std::vector<std::string> out;
  for (const json& x : f.Array(key)) {
    if (!x.is_string() || x.get<std::string>().empty()) {
      throw BadRequest(fmt::format(
          "params.{}: expected an array of non-empty strings, got an element "
          "{} {}",
          key, x.type_name(), x.dump()));
    }
    out.push_back(x.get<std::string>());
  }
  return out;
}

bool DxDialogueTurn(const std::string& text,
                    const std::vector<std::string>& actions) {
  bool any = false;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line =
        Trim(std::string_view(text).substr(pos, end - pos));
    if (!line.empty()) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) return false;
      const std::string verb = ToLower(Trim(line.substr(0, colon)));
      bool known = false;
      for (const auto& a : actions) known |= ToLower(a) == verb;
      if (!known || Trim(line.substr(colon + 1)).empty()) return false;
      any = true;
    }
    if (end == text.size()) break;
    pos = end + 1;
  }
  return any;
}

// The envs' own reader, so a turn gets format credit exactly when the env
// would take it as one call.
bool ToolCallTurn(const std::string& text) {
  const ParsedToolCalls parsed = ParseToolCalls(text);
  return parsed.error.empty() && parsed.calls.size() == 1;
}

class FormatReward : public Reward {
 public:
  // std::regex backtracks: a pattern may take exponential time.
  bool bounded_time(const json& params) const override {
    return params.value("grammar", "") != "regex";
  }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    const std::string grammar = f.String("grammar");
    const std::string mode = f.String("mode", "fraction");
    if (mode != "fraction" && mode != "all") {
      throw BadRequest(fmt::format(
          "params.mode: expected one of fraction, all, got \"{}\"", mode));
    }
    if (grammar == "dx_dialogue") {
      StringList(f, "actions", {});
    } else if (grammar == "json") {
      StringList(f, "required_keys", {});
    } else if (grammar == "regex") {
      CachedRegex(f.String("pattern"), "params.pattern");
    } else if (grammar != "tool_call") {
      throw BadRequest(fmt::format(
          "params.grammar: expected one of dx_dialogue, json, regex, "
          "tool_call, got "
          "\"{}\"",
          grammar));
    }
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    const wire::Fields f(params, "params");
    const std::string grammar = f.String("grammar");
    const std::vector<std::string> actions = StringList(
        f, "actions", {"ASK", "EXAM", "TEST", "DIAGNOSIS", "DISPOSITION"});
    const std::vector<std::string> keys = StringList(f, "required_keys", {});
    const std::regex* pattern =
        grammar == "regex" ? &CachedRegex(f.String("pattern"), "params.pattern")
                           : nullptr;
    int64_t total = 0;
    int64_t valid = 0;
    json invalid = json::array();
    for (size_t i = 0; i < t.turns.size(); ++i) {
      const Turn& turn = t.turns[i];
      if (!IsPolicyTurn(turn)) continue;
      ++total;
      bool ok = false;
      if (grammar == "dx_dialogue") {
        ok = DxDialogueTurn(turn.content, actions);
      } else if (grammar == "tool_call") {
        ok = ToolCallTurn(turn.content);
      } else if (grammar == "json") {
        const json parsed = json::parse(turn.content, nullptr, false);
        ok = parsed.is_object();
        for (const auto& k : keys) ok = ok && parsed.contains(k);
      } else {
        ok = std::regex_match(Trim(turn.content), *pattern);
      }
      if (ok) {
        ++valid;
      } else {
        invalid.push_back(i);
      }
    }
    ScoreResult r;
    r.details = {{"policy_turns", total},
                 {"valid_turns", valid},
                 {"invalid_turn_indices", invalid}};
    if (total == 0) return r;
    r.score = f.String("mode", "fraction") == "all"
                  ? (valid == total ? 1.0 : 0.0)
                  : static_cast<double>(valid) / static_cast<double>(total);
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(format, [] { return std::make_unique<FormatReward>(); });

}  // namespace clinrl::rewards
