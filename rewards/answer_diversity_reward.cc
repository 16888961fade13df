// answer_diversity (group level): 1 / (how many members of the GRPO group
// gave the same normalised final answer). Rewards a group that explores
// several diagnoses rather than collapsing onto one; members without an
// answer score 0. Params: tag (default "DIAGNOSIS"), answer_field.
#include <map>
#include <optional>
#include <string>

#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

class AnswerDiversityReward : public Reward {
 public:
  bool bounded_time(const json&) const override { return true; }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    f.String("tag", "DIAGNOSIS");
    f.String("answer_field", "");
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    return ScoreGroup({&t}, params).front();
  }

  bool group_level() const override { return true; }

  std::vector<ScoreResult> ScoreGroup(
      const std::vector<const Trajectory*>& group,
      const json& params) const override {
    const wire::Fields f(params, "params");
    const std::string tag = f.String("tag", "DIAGNOSIS");
    std::vector<std::optional<std::string>> answers;
    std::map<std::string, int64_t> counts;
    for (const Trajectory* t : group) {
      auto a = ExtractAnswer(*t, params, tag, false);
      if (a) {
        a = NormaliseAnswer(*a);
        ++counts[*a];
      }
      answers.push_back(a);
    }
    std::vector<ScoreResult> out(group.size());
    for (size_t i = 0; i < group.size(); ++i) {
      out[i].details = {{"group_size", group.size()},
                        {"distinct_answers", counts.size()}};
      if (!answers[i]) continue;
      const int64_t same = counts[*answers[i]];
      out[i].score = 1.0 / static_cast<double>(same);
      out[i].details["same_answer"] = same;
    }
    return out;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(answer_diversity, [] {
  return std::make_unique<AnswerDiversityReward>();
});

}  // namespace clinrl::rewards
