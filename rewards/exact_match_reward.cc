// exact_match: the normalised answer equals the normalised expected text (or
// one of several). Params: expected (string or array of strings), tag
// (default "ANSWER"), answer_field.
#include <string>
#include <vector>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

std::vector<std::string> ExpectedStrings(const json& params) {
  const wire::Fields f(params, "params");
  const json& e = f.Get("expected");
  std::vector<std::string> out;
  if (e.is_string()) {
    out.push_back(e.get<std::string>());
  } else if (e.is_array() && !e.empty()) {
    for (const json& x : e) {
      if (!x.is_string()) {
        throw BadRequest(fmt::format(
            "params.expected: expected a string or a non-empty array of "
            "strings, got an array holding {} {}",
            x.type_name(), x.dump()));
      }
      out.push_back(x.get<std::string>());
    }
  } else {
    throw BadRequest(fmt::format(
        "params.expected: expected a string or a non-empty array of strings, "
        "got {} {}",
        e.type_name(), e.dump()));
  }
  return out;
}

class ExactMatchReward : public Reward {
 public:
  bool bounded_time(const json&) const override { return true; }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    for (const auto& e : ExpectedStrings(params)) {
      if (NormaliseAnswer(e).empty()) {
        throw BadRequest(fmt::format(
            "params.expected: \"{}\" is empty after normalisation", e));
      }
    }
    f.String("tag", "ANSWER");
    f.String("answer_field", "");
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    const wire::Fields f(params, "params");
    const auto answer =
        ExtractAnswer(t, params, f.String("tag", "ANSWER"), true);
    ScoreResult r;
    if (!answer) {
      r.details = {{"answer", nullptr}, {"reason", "no answer"}};
      return r;
    }
    const std::string got = NormaliseAnswer(*answer);
    r.details = {{"answer", *answer}, {"normalised", got}};
    for (const auto& e : ExpectedStrings(params)) {
      if (got == NormaliseAnswer(e)) {
        r.score = 1.0;
        r.details["matched"] = e;
        break;
      }
    }
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(exact_match,
                       [] { return std::make_unique<ExactMatchReward>(); });

}  // namespace clinrl::rewards
