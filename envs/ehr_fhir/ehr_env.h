// What the EHR envs (ehr_fhir, ehr_workflow) share around their graders: an
// episode is an agent's session with the EHR (ehr_session.h) of at most
// max_turns actions, ended by FINISH, by the turn limit or by the runtime's
// truncate, and then graded. Step, Truncate and the final info live here, so
// both envs end an episode alike (the same closing observation, info keys
// and shared metrics); a subclass says what differs: its spec, its tasks and
// prompt (Reset), and how a finished episode is graded (Grade).
//
// A base class rather than a member helper: Step and Truncate are the Env
// interface's own, and a helper would leave each env forwarding them.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "envs/ehr_fhir/ehr_record.h"
#include "envs/ehr_fhir/ehr_session.h"
#include "envs/env.h"

namespace clinrl::envs::ehr {

class EhrEnv : public Env {
 public:
  // Runs a GET or POST in the session (or counts an invalid action); FINISH,
  // or the max_turns-th action, ends the episode and grades it.
  StepResult Step(const std::string& action) final;
  // Ends the episode as the turn limit would: graded with no FINISH answer
  // (the writes executed so far count).
  StepResult Truncate() final;

 protected:
  // The grade of a finished episode.
  struct EpisodeGrade {
    double reward = 0.0;
    bool correct = false;
    json verdict;                   // the grader's own output: info.grade
    json metrics = json::object();  // the env's metrics beyond the shared ones
  };

  // `max_turns` and `tools` (action_mode "tools") are the env's options;
  // `session_prefix`, `base_url` and `dry_run` are EhrSession's.
  EhrEnv(std::shared_ptr<EhrRecord> record, const std::string& session_prefix,
         int64_t max_turns, bool tools, std::string base_url = "",
         bool dry_run = false);

  // Grades a finished episode, `episode` being the session's record
  // ({"finish": answer or null, "writes": [..]}), against the task of the
  // current episode.
  virtual EpisodeGrade Grade(const json& episode) const = 0;

  // The spec as both envs declare it (version 1.0, the action grammar or the
  // tools, max_turns) under `name`, without the splits, which are the env's.
  EnvSpec SpecWithoutSplits(const std::string& name) const;

  // Starts an episode, for Reset once the task is known to exist: a fresh
  // sandbox, no writes, turns or invalid actions.
  void StartEpisode();

  const std::shared_ptr<EhrRecord>& record() const { return record_; }
  const EhrSession& session() const { return session_; }

 private:
  StepResult Finish(StepResult out, const json& answer, bool truncated);

  std::shared_ptr<EhrRecord> record_;
  EhrSession session_;  // its sandbox, its writes and invalid actions
  int64_t max_turns_;
  bool tools_;
  int64_t turns_ = 0;
  bool done_ = true;
};

}  // namespace clinrl::envs::ehr
