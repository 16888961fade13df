// cost: a penalty for what the agent spent on tests and exams, read from the
// env's final info (trajectory.info.metrics.cost, or params.cost_field).
// Score = -min(cost / budget, max_penalty): linear, so every extra test
// costs something, and capped so one runaway episode cannot swamp the group.
// Params: budget (> 0), max_penalty (default 1), cost_field.
#include <cmath>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

class CostReward : public Reward {
 public:
  bool bounded_time(const json&) const override { return true; }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    const double budget = f.Double("budget");
    if (!(budget > 0.0) || !std::isfinite(budget)) {
      throw BadRequest(fmt::format(
          "params.budget: expected a finite number > 0, got {}", budget));
    }
    const double cap = f.Double("max_penalty", 1.0);
    if (!(cap >= 0.0)) {
      throw BadRequest(fmt::format(
          "params.max_penalty: expected a number >= 0, got {}", cap));
    }
    f.String("cost_field", "metrics.cost");
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    const wire::Fields f(params, "params");
    const std::string field = f.String("cost_field", "metrics.cost");
    const json* cost = FindPath(t.info, field);
    if (cost == nullptr || !cost->is_number()) {
      throw BadRequest(fmt::format(
          "trajectory.info.{}: expected the episode's total cost (a number), "
          "got {}",
          field, cost == nullptr ? "nothing" : cost->dump()));
    }
    const double spent = cost->get<double>();
    if (spent < 0.0) {
      throw BadRequest(fmt::format(
          "trajectory.info.{}: expected a cost >= 0, got {}", field, spent));
    }
    const double budget = f.Double("budget");
    ScoreResult r;
    r.score = -std::min(spent / budget, f.Double("max_penalty", 1.0));
    r.details = {{"cost", spent}, {"budget", budget}};
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(cost, [] { return std::make_unique<CostReward>(); });

}  // namespace clinrl::rewards
