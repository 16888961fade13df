#include "envs/ehr_fhir/ehr_env.h"

#include <utility>

#include "core/error.h"
#include "envs/ehr_fhir/agent_action.h"
#include "envs/ehr_fhir/agent_tool_call.h"

namespace clinrl::envs::ehr {

EhrEnv::EhrEnv(std::shared_ptr<EhrRecord> record,
               const std::string& session_prefix, int64_t max_turns, bool tools,
               std::string base_url, bool dry_run)
    : record_(std::move(record)),
      session_(record_, session_prefix, std::move(base_url), dry_run),
      max_turns_(max_turns),
      tools_(tools) {}

EnvSpec EhrEnv::SpecWithoutSplits(const std::string& name) const {
  EnvSpec s;
  s.name = name;
  s.version = "1.0";
  s.action_format = tools_ ? kAgentToolInstruction : kAgentActionFormat;
  if (tools_) s.tools = AgentTools();
  s.max_turns = max_turns_;
  return s;
}

void EhrEnv::StartEpisode() {
  session_.Restart();
  turns_ = 0;
  done_ = false;
}

StepResult EhrEnv::Step(const std::string& text) {
  if (done_) {
    throw BadRequest(
        "step: the episode is over (or was never reset); call reset");
  }
  ++turns_;
  StepResult out;
  const AgentAction action = ParseAgentReply(text, tools_);
  if (action.kind == AgentAction::Kind::kFinish) {
    return Finish(std::move(out), action.answer, false);
  }
  out.observation.push_back({AgentReplyRole(tools_), session_.Run(action)});
  out.info = {{"invalid_actions", session_.invalid_actions()},
              {"turn", turns_}};
  if (turns_ >= max_turns_) return Finish(std::move(out), json(), true);
  return out;
}

StepResult EhrEnv::Truncate() {
  if (done_) {
    throw BadRequest(
        "truncate: the episode is over (or was never reset); call reset");
  }
  return Finish(StepResult{}, json(), true);
}

StepResult EhrEnv::Finish(StepResult out, const json& answer, bool truncated) {
  done_ = true;
  const json episode = session_.Episode(answer);
  EpisodeGrade grade = Grade(episode);
  out.terminated = !truncated;
  out.truncated = truncated;
  out.reward = grade.reward;
  if (!truncated) {
    out.observation.push_back(
        {AgentReplyRole(tools_), "The episode is finished."});
  }
  json metrics = {{"correct", grade.correct ? 1 : 0},
                  {"cost", 0},
                  {"turns", turns_},
                  {"invalid_actions", session_.invalid_actions()},
                  {"writes", session_.ExecutedWrites()}};
  metrics.update(grade.metrics);
  out.info = {{"invalid_actions", session_.invalid_actions()},
              {"turn", turns_},
              {"ehr", episode},
              {"grade", std::move(grade.verdict)},
              {"metrics", std::move(metrics)}};
  return out;
}

}  // namespace clinrl::envs::ehr
