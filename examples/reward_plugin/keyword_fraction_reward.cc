// Example reward plug-in: `keyword_fraction` scores the fraction of
// params.keywords (case-insensitive substrings) present in the final policy
// turn. Build it, list the .so in rewards.plugins, and use
//   {"name": "kw", "plugin": "keyword_fraction", "weight": 0.2,
//    "params": {"keywords": ["troponin", "ecg"]}}
// in a reward spec. Everything a plug-in needs: a Reward subclass, the
// registration macro, and the ABI function.
#include <algorithm>
#include <cctype>
#include <memory>
#include <string>

#include "core/error.h"
#include "rewards/plugin_loader.h"
#include "rewards/reward_registry.h"

namespace {

using clinrl::BadRequest;
using clinrl::Trajectory;
using clinrl::rewards::json;
using clinrl::rewards::ScoreResult;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return s;
}

class KeywordFractionReward : public clinrl::rewards::Reward {
 public:
  void ValidateParams(const json& params) const override {
    if (!params.is_object() || !params.contains("keywords") ||
        !params["keywords"].is_array() || params["keywords"].empty()) {
      throw BadRequest(
          "params.keywords: expected a non-empty array of strings, got " +
          (params.is_object() && params.contains("keywords")
               ? params["keywords"].dump()
               : std::string("nothing")));
    }
    for (const auto& k : params["keywords"]) {
      if (!k.is_string() || k.get<std::string>().empty()) {
        throw BadRequest(
            "params.keywords: expected non-empty strings, got an element " +
            k.dump());
      }
    }
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    std::string last;
    for (auto it = t.turns.rbegin(); it != t.turns.rend(); ++it) {
      if (it->role == "assistant") {
        last = Lower(it->content);
        break;
      }
    }
    ScoreResult r;
    json found = json::array();
    for (const auto& k : params["keywords"]) {
      if (last.find(Lower(k.get<std::string>())) != std::string::npos) {
        found.push_back(k);
      }
    }
    r.score = static_cast<double>(found.size()) /
              static_cast<double>(params["keywords"].size());
    r.details = {{"found", found}};
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(keyword_fraction, [] {
  return std::make_unique<KeywordFractionReward>();
});

extern "C" int clinrl_reward_plugin_abi() { return CLINRL_REWARD_PLUGIN_ABI; }
