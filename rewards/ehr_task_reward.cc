#include "rewards/ehr_task_reward.h"

#include <memory>
#include <utility>
#include <vector>

#include "envs/ehr_fhir/grading/task_grader.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {

void EhrTaskReward::ValidateParams(const json& params) const {
  envs::ehr::ValidateAnswerKey(params);
}

ScoreResult EhrTaskReward::Score(const Trajectory& trajectory,
                                 const json& params) const {
  json episode;
  std::string source = "info.ehr";
  if (trajectory.info.is_object() && trajectory.info.contains("ehr")) {
    episode = trajectory.info["ehr"];
  } else {
    std::vector<std::pair<std::string, std::string>> turns;
    for (const auto& t : trajectory.turns)
      turns.emplace_back(t.role, t.content);
    episode = envs::ehr::EpisodeFromTranscript(turns);
    source = "transcript";
  }
  json verdict = envs::ehr::GradeEpisode(params, episode);
  verdict["episode_source"] = source;
  ScoreResult out;
  out.score = verdict["correct"].get<bool>() ? 1.0 : 0.0;
  out.details = std::move(verdict);
  return out;
}

CLINRL_REGISTER_REWARD(ehr_task,
                       [] { return std::make_unique<EhrTaskReward>(); });

}  // namespace clinrl::rewards
