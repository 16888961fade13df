// The Reward plug-in interface (docs/design.md, reward protocol). A plug-in
// scores one finished trajectory against its parameters from the task's reward
// spec; the composite (composite_reward.h) weights and sums the components.
//
// A task's reward spec (info.reward_spec, copied into Trajectory::reward_spec):
//   {"components": [{"name": "dx", "plugin": "icd10", "weight": 1.0,
//                    "params": {"expected": "I21.9"}}, ...],
//    "success": "dx"}   // the component whose score >= 1 counts as a success
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/trajectory.h"

namespace clinrl::rewards {

using nlohmann::json;

struct ScoreResult {
  double score = 0.0;
  json details = json::object();
};

class Reward {
 public:
  virtual ~Reward() = default;
  // Throws BadRequest naming the field ("params.expected: expected a string,
  // got number 3") when the spec's params do not fit this plug-in.
  virtual void ValidateParams(const json& params) const = 0;
  // Deterministic: the same trajectory and params give the same score.
  virtual ScoreResult Score(const Trajectory& trajectory,
                            const json& params) const = 0;
  // True when scoring with these params takes time bounded by the size of
  // the trajectory (pure computation: no I/O, no backtracking regex). Such
  // components run inline on the calling thread, skipping the deadline
  // executor's thread hand-off; all others run under a deadline.
  virtual bool bounded_time(const json& params) const { return false; }
  // Group-level plug-ins (computed over a GRPO group) override this; the
  // default scores each trajectory on its own.
  virtual bool group_level() const { return false; }
  virtual std::vector<ScoreResult> ScoreGroup(
      const std::vector<const Trajectory*>& group, const json& params) const;
};

}  // namespace clinrl::rewards
