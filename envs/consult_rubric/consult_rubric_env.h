// consult_rubric: open patient conversations graded by per-case rubrics in
// HealthBench's format (docs/envs/consult_rubric.md). Reset shows the
// conversation; the agent's one reply is the whole action; the episode ends
// and is scored by the case's rubric.
//
// Decisions:
// - The step reward is HealthBench's example score clipped to [0, 1]
//   (rewards/rubric.h's ScoreExample over rewards/rule_matcher.h's verdicts,
//   the library the `rubric` plug-in grades with: docs/design.md, "The
//   layering rule"); the unclipped score is reported too. The reward spec
//   asks the `rubric` plug-in for the same clipped score, so a run scoring
//   through the reward service gets the env's number.
// - Without a judge every criterion must carry a rule `match` (a row without
//   one is refused when the env is made, naming file, line and criterion).
//   With the `judge` option, criteria without one go to the LLM judge in the
//   reward spec; the env cannot call the judge itself (envs/ may use only
//   the pure rubric scoring of rewards/, not its HTTP judge client), so for
//   such cases it reports no score and no `correct`, and the reward comes
//   from the spec alone.
// - An empty reply is an invalid action; with one turn the episode is then
//   truncated, scored as a reply that meets nothing.
// - The reset info carries the row's reference reply for the `oracle`
//   scripted policy (reference_reply), as dx_dialogue's carries the case.
#pragma once

#include <memory>
#include <string>

#include "envs/consult_rubric/consult_case.h"
#include "envs/env.h"

namespace clinrl::envs::consult {

// The judge as rewards/llm_judge.h's ParseLlmJudgeOptions reads it (the
// reward spec's params.judge). An empty url means no judge.
struct JudgeOptions {
  std::string url;
  std::string path = "/v1/chat/completions";
  std::string model = "gpt-4.1";
  std::string api_key_env;  // the variable's name; keys never sit in specs
  int64_t max_retries = 3;
  int64_t concurrency = 8;
  int64_t timeout_ms = 60000;
  double temperature = 0.0;
  int64_t max_tokens = 512;

  template <class V>
  void Visit(V& v) {
    v("url", url, "OpenAI-compatible base URL; empty = no judge");
    v("path", path, "chat-completions path");
    v("model", model, "judge model name");
    v("api_key_env", api_key_env, "environment variable with the API key");
    v.AtLeast("max_retries", max_retries, int64_t{0}, "extra attempts");
    v.AtLeast("concurrency", concurrency, int64_t{1}, "criteria in parallel");
    v.AtLeast("timeout_ms", timeout_ms, int64_t{1}, "per HTTP request");
    v("temperature", temperature, "sampling temperature");
    v.AtLeast("max_tokens", max_tokens, int64_t{1}, "judge reply budget");
  }
};

// Env options (envs[i].options in a run config, --options of env serve/eval).
struct ConsultRubricOptions {
  std::string data_file;  // HealthBench-format JSONL; "" = the shipped set
  std::string split_by = "field_or_hash";
  double correct_threshold = 0.8;
  std::string system_prompt =
      "You are a careful, kind clinician replying to a patient's message. "
      "Answer in plain text; your whole reply is graded.";
  JudgeOptions judge;
  // The reward spec's deadline for a judged component (docs/rewards.md).
  int64_t judge_deadline_ms = 120000;

  template <class V>
  void Visit(V& v) {
    v("data_file", data_file, "HealthBench-format JSONL; empty = shipped set");
    v.Enum("split_by", split_by, {"field_or_hash", "hash"},
           "a row's split: its 'split' field, else a prompt_id hash");
    v("correct_threshold", correct_threshold,
      "metrics.correct = score >= this, 0..1");
    v("system_prompt", system_prompt, "first message; empty = none");
    v("judge", judge, "LLM judge for criteria without a rule match");
    v.AtLeast("judge_deadline_ms", judge_deadline_ms, int64_t{1},
              "reward deadline of a judged component");
  }
};

class ConsultRubricEnv : public Env {
 public:
  explicit ConsultRubricEnv(ConsultRubricOptions options,
                            const std::string& path = "options");
  // Options: ConsultRubricOptions; episodes take no reset options.
  static std::unique_ptr<Env> Create(const json& options,
                                     const std::string& path = "options");

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;
  StepResult Truncate() override;

  // The reward spec of a case (public for the tests).
  json RewardSpec(const ConsultCase& c) const;

 private:
  bool judged() const { return !options_.judge.url.empty(); }
  void CheckGradable(const std::string& path) const;
  json JudgeJson() const;
  json RubricComponent(
      const std::string& name,
      const std::vector<const rewards::RubricCriterion*>& criteria, bool judge,
      double weight, bool clip) const;
  // The final info of an episode whose reply was *reply (null: none given).
  json EpisodeEndInfo(const std::string* reply, double* reward) const;

  ConsultRubricOptions options_;
  std::shared_ptr<const ConsultCaseSet> cases_;
  const ConsultCase* case_ = nullptr;
  int64_t invalid_actions_ = 0;
  bool done_ = true;
};

}  // namespace clinrl::envs::consult
