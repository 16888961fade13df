// rubric: HealthBench-style rubric scoring of the final policy turn (see
// rubric.h for the formula, rule_matcher.h and llm_judge.h for the matchers).
// Params:
//   rubrics          [{criterion, points, tags, match}]  (required)
//   matcher          "rule" (default) | "llm_judge"
//   judge            llm_judge options (url, model, ...), required for it
//   synonyms, negation_cues, negation_window   rule matcher options
//   clip             clip the example score to [0, 1] (default false: the
//                    raw HealthBench score, negative when harms dominate)
//   details          "full" (default, every criterion) | "summary"
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/llm_judge.h"
#include "rewards/reward_registry.h"
#include "rewards/rubric.h"
#include "rewards/rule_matcher.h"

namespace clinrl::rewards {
namespace {

RuleMatcherOptions RuleOptions(const wire::Fields& f) {
  RuleMatcherOptions o;
  if (f.Has("synonyms")) o.synonyms = f.Get("synonyms");
  if (f.Has("negation_cues")) {
    for (const auto& c : f.Array("negation_cues")) {
      if (!c.is_string()) {
        throw BadRequest(fmt::format(
            "params.negation_cues: expected an array of strings, got an "
            "element {}",
            c.dump()));
      }
      o.negation_cues.push_back(ToLower(c.get<std::string>()));
    }
  }
  o.window = f.Int("negation_window", o.window);
  return o;
}

// A task's rubric is graded once per trajectory of the task: parse it once
// per thread (a hash and a deep equality check find it again).
const std::vector<RubricCriterion>& CachedCriteria(const json& rubrics) {
  constexpr size_t kMaxRubrics = 256;
  struct Entry {
    json source;
    std::vector<RubricCriterion> criteria;
  };
  thread_local std::unordered_multimap<size_t, Entry> cache;
  const size_t key = std::hash<json>{}(rubrics);
  auto range = cache.equal_range(key);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second.source == rubrics) return it->second.criteria;
  }
  auto criteria = ParseCriteria(rubrics, "params.rubrics");
  if (cache.size() >= kMaxRubrics) cache.clear();
  return cache.emplace(key, Entry{rubrics, std::move(criteria)})
      ->second.criteria;
}

class RubricReward : public Reward {
 public:
  // The rule matcher is linear in the response, except std::regex
  // (backtracking); the judge waits on the network.
  bool bounded_time(const json& params) const override {
    if (params.value("matcher", "rule") != "rule") return false;
    auto rubrics = params.find("rubrics");
    if (rubrics == params.end() || !rubrics->is_array()) return false;
    for (const auto& c : *rubrics) {
      if (!c.is_object()) return false;
      auto match = c.find("match");
      if (match != c.end() && match->is_object() && match->contains("regex")) {
        return false;
      }
    }
    return true;
  }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    const auto criteria = ParseCriteria(f.Get("rubrics"), "params.rubrics");
    const std::string matcher = f.String("matcher", "rule");
    if (matcher == "rule") {
      ValidateRules(criteria, RuleOptions(f), "params.rubrics");
    } else if (matcher == "llm_judge") {
      ParseLlmJudgeOptions(f.Get("judge"), "params.judge");
    } else {
      throw BadRequest(fmt::format(
          "params.matcher: expected one of rule, llm_judge, got \"{}\"",
          matcher));
    }
    f.Bool("clip", false);
    const std::string details = f.String("details", "full");
    if (details != "full" && details != "summary") {
      throw BadRequest(fmt::format(
          "params.details: expected one of full, summary, got \"{}\"",
          details));
    }
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    const wire::Fields f(params, "params");
    const auto& criteria = CachedCriteria(f.Get("rubrics"));
    ScoreResult r;
    const Turn* last = LastPolicyTurn(t);
    std::vector<CriterionVerdict> verdicts;
    if (last == nullptr) {
      // Nothing to grade: no criterion is met (negative ones included).
      verdicts.resize(criteria.size());
      r.details["reason"] = "no policy turn";
    } else if (f.String("matcher", "rule") == "rule") {
      verdicts = MatchRules(last->content, criteria, RuleOptions(f));
    } else {
      std::vector<Message> conversation;
      for (const Turn& turn : t.turns) {
        conversation.push_back({turn.role, turn.content});
        if (&turn == last) break;
      }
      verdicts =
          JudgeCriteria(conversation, criteria,
                        ParseLlmJudgeOptions(f.Get("judge"), "params.judge"));
    }
    std::vector<bool> met;
    for (const auto& v : verdicts) met.push_back(v.met);
    const ExampleScore s = ScoreExample(criteria, met);
    r.score = f.Bool("clip", false) ? std::clamp(s.score, 0.0, 1.0) : s.score;
    r.details["points_achieved"] = s.achieved;
    r.details["points_possible"] = s.possible;
    r.details["unclipped"] = s.score;
    r.details["tags"] = s.tag_scores;
    if (f.String("details", "full") == "full") {
      json list = json::array();
      for (size_t i = 0; i < criteria.size(); ++i) {
        list.push_back({{"criterion", criteria[i].criterion},
                        {"points", criteria[i].points},
                        {"met", verdicts[i].met},
                        {"why", verdicts[i].explanation}});
      }
      r.details["criteria"] = std::move(list);
    }
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(rubric, [] { return std::make_unique<RubricReward>(); });

}  // namespace clinrl::rewards
