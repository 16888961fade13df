// ehr_task: scores an ehr_fhir episode with the env's own grader
// (envs/ehr_fhir/grading, the one copy both link). 1 when the FINISH answer
// and exactly the required writes are right, else 0; details say why.
// Params: the task's answer key (envs/ehr_fhir/grading/task_grader.h).
// The episode comes from trajectory.info.ehr (the env's final step info) or,
// failing that, is rebuilt from the transcript.
#pragma once

#include "rewards/reward.h"

namespace clinrl::rewards {

class EhrTaskReward : public Reward {
 public:
  void ValidateParams(const json& params) const override;
  ScoreResult Score(const Trajectory& trajectory,
                    const json& params) const override;
};

}  // namespace clinrl::rewards
