#include "envs/consult_rubric/consult_rubric_env.h"

#include <algorithm>

#include "core/error.h"
#include "envs/env_options.h"
#include "envs/env_registry.h"
#include "rewards/rubric.h"
#include "rewards/rule_matcher.h"

namespace clinrl::envs::consult {

namespace {

using rewards::RubricCriterion;

std::string Trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

SplitBy ParseSplitBy(const std::string& name) {
  return name == "hash" ? SplitBy::kHash : SplitBy::kFieldOrHash;
}

void CheckOptions(const ConsultRubricOptions& o, const std::string& path) {
  if (!(o.correct_threshold >= 0.0 && o.correct_threshold <= 1.0)) {
    throw ConfigError(
        fmt::format("{}.correct_threshold: expected a value in [0, 1], got {}",
                    path, o.correct_threshold));
  }
  const std::string& url = o.judge.url;
  if (!url.empty() && url.rfind("http://", 0) != 0 &&
      url.rfind("https://", 0) != 0) {
    throw ConfigError(fmt::format(
        "{}.judge.url: expected an http:// or https:// base URL (or empty "
        "for no judge), got \"{}\"",
        path, url));
  }
}

json CriterionJson(const RubricCriterion& c) {
  json j = {{"criterion", c.criterion}, {"points", c.points}, {"tags", c.tags}};
  if (!c.match.is_null()) j["match"] = c.match;
  return j;
}

double PositivePoints(const std::vector<const RubricCriterion*>& criteria) {
  double sum = 0.0;
  for (const auto* c : criteria) sum += c->points > 0 ? c->points : 0.0;
  return sum;
}

// The rule matcher's verdicts on `reply` (none given: nothing is met, as the
// plug-in grades a trajectory without a policy turn). Default options, as the
// reward spec's `rule` components set none.
std::vector<bool> MetCriteria(const std::vector<RubricCriterion>& criteria,
                              const std::string* reply) {
  std::vector<bool> met(criteria.size(), false);
  if (reply == nullptr) return met;
  const auto verdicts = rewards::MatchRules(*reply, criteria, {});
  for (size_t i = 0; i < verdicts.size(); ++i) met[i] = verdicts[i].met;
  return met;
}

}  // namespace

ConsultRubricEnv::ConsultRubricEnv(ConsultRubricOptions options,
                                   const std::string& path)
    : options_(std::move(options)) {
  CheckOptions(options_, path);
  try {
    cases_ =
        SharedConsultCases(options_.data_file, ParseSplitBy(options_.split_by));
  } catch (const Error& e) {
    throw ConfigError(fmt::format("{}.data_file: {}", path, e.what()));
  }
  CheckGradable(path);
}

std::unique_ptr<Env> ConsultRubricEnv::Create(const json& options,
                                              const std::string& path) {
  return std::make_unique<ConsultRubricEnv>(
      ReadOptions<ConsultRubricOptions>(options, path), path);
}

// Without a judge, a criterion without a rule could never be graded: refuse
// the data at start rather than score such criteria as unmet.
void ConsultRubricEnv::CheckGradable(const std::string& path) const {
  if (judged()) return;
  for (const auto& [split, cases] : cases_->splits) {
    for (const ConsultCase& c : cases) {
      if (c.judged_criteria == 0) continue;
      size_t i = 0;
      while (!c.rubrics[i].match.is_null()) ++i;
      throw ConfigError(fmt::format(
          "{}.data_file: {}: rubrics[{}].match: required without a judge "
          "(criterion \"{}\" has no rule); set {}.judge.url to grade such "
          "criteria with an LLM judge",
          path, c.where, i, c.rubrics[i].criterion, path));
    }
  }
}

EnvSpec ConsultRubricEnv::Spec() const {
  EnvSpec s;
  s.name = "consult_rubric";
  s.version = "1.0";
  s.action_format =
      "Reply to the patient in plain text. The whole reply is one action; it "
      "ends the conversation and is graded against the case's rubric.";
  s.max_turns = 1;
  for (const auto& [split, cases] : cases_->splits) {
    s.splits[split] = static_cast<int64_t>(cases.size());
  }
  return s;
}

ResetResult ConsultRubricEnv::Reset(const ResetRequest& request) {
  ReadOptions<NoOptions>(request.options, "options");
  auto split = cases_->splits.find(request.split);
  if (split == cases_->splits.end()) {
    throw BadRequest(fmt::format(
        "reset.split: got '{}', expected one of: test, train, validation",
        request.split));
  }
  if (split->second.empty()) {
    throw BadRequest(
        fmt::format("reset.split: split '{}' has no cases in this data set",
                    request.split));
  }
  const int64_t index =
      TaskIndexOf(request, static_cast<int64_t>(split->second.size()));
  case_ = &split->second[static_cast<size_t>(index)];
  invalid_actions_ = 0;
  done_ = false;
  ResetResult r;
  if (!options_.system_prompt.empty()) {
    r.observation.push_back({"system", options_.system_prompt});
  }
  for (const auto& m : case_->prompt) r.observation.push_back(m);
  r.info = {{"task_index", index},
            {"prompt_id", case_->prompt_id},
            {"example_tags", case_->example_tags},
            {"reward_spec", RewardSpec(*case_)},
            {"invalid_actions", 0}};
  // For the oracle policy (a demonstration), never shown to the agent.
  if (!case_->reference_reply.empty()) {
    r.info["reference_reply"] = case_->reference_reply;
  }
  return r;
}

StepResult ConsultRubricEnv::Step(const std::string& action) {
  if (done_) {
    throw BadRequest(
        "consult_rubric: step after the episode ended; reset first");
  }
  done_ = true;
  StepResult r;
  if (Trim(action).empty()) {
    ++invalid_actions_;
    r.truncated = true;
    r.observation = {{"user",
                      "Invalid action: the reply is empty; expected a "
                      "plain-text reply to the patient."}};
  } else {
    r.terminated = true;
  }
  r.info = EpisodeEndInfo(&action, &r.reward);
  return r;
}

StepResult ConsultRubricEnv::Truncate() {
  if (done_) {
    throw BadRequest(
        "consult_rubric: truncate after the episode ended; reset first");
  }
  // No reply was given: as the rubric plug-in does for a trajectory without
  // a policy turn, no criterion is met.
  done_ = true;
  StepResult r;
  r.truncated = true;
  r.info = EpisodeEndInfo(nullptr, &r.reward);
  return r;
}

json ConsultRubricEnv::EpisodeEndInfo(const std::string* reply,
                                      double* reward) const {
  json info = {{"invalid_actions", invalid_actions_},
               {"prompt_id", case_->prompt_id},
               {"reward_spec", RewardSpec(*case_)}};
  *reward = 0.0;
  if (case_->judged_criteria > 0) {
    // Only the judge in the reward spec can grade this case.
    info["scored_by"] = "reward_spec";
    info["metrics"] = {
        {"cost", 0.0},
        {"judged_criteria", static_cast<double>(case_->judged_criteria)}};
    return info;
  }
  const std::vector<bool> met = MetCriteria(case_->rubrics, reply);
  const rewards::ExampleScore s = rewards::ScoreExample(case_->rubrics, met);
  // As the plug-in clips for the spec's `clip: true`.
  const double clipped = std::clamp(s.score, 0.0, 1.0);
  const bool answered = reply != nullptr && !Trim(*reply).empty();
  json metrics = {
      {"score", clipped},
      {"raw_score", s.score},
      {"points_achieved", s.achieved},
      {"points_possible", s.possible},
      {"correct",
       answered && clipped >= options_.correct_threshold ? 1.0 : 0.0},
      {"cost", 0.0}};
  for (const auto& [tag, score] : s.tag_scores) metrics[tag] = score;
  json criteria = json::array();
  for (size_t i = 0; i < met.size(); ++i) {
    criteria.push_back({{"criterion", case_->rubrics[i].criterion},
                        {"points", case_->rubrics[i].points},
                        {"met", static_cast<bool>(met[i])}});
  }
  info["metrics"] = std::move(metrics);
  info["criteria"] = std::move(criteria);
  *reward = clipped;
  return info;
}

json ConsultRubricEnv::JudgeJson() const {
  const JudgeOptions& j = options_.judge;
  json out = {{"url", j.url},
              {"path", j.path},
              {"model", j.model},
              {"max_retries", j.max_retries},
              {"concurrency", j.concurrency},
              {"timeout_ms", j.timeout_ms},
              {"temperature", j.temperature},
              {"max_tokens", j.max_tokens}};
  if (!j.api_key_env.empty()) out["api_key_env"] = j.api_key_env;
  return out;
}

json ConsultRubricEnv::RubricComponent(
    const std::string& name,
    const std::vector<const RubricCriterion*>& criteria, bool judge,
    double weight, bool clip) const {
  json rubrics = json::array();
  for (const auto* c : criteria) rubrics.push_back(CriterionJson(*c));
  json params = {{"rubrics", std::move(rubrics)},
                 {"matcher", judge ? "llm_judge" : "rule"},
                 {"clip", clip}};
  json component = {{"name", name}, {"plugin", "rubric"}, {"weight", weight}};
  if (judge) {
    params["judge"] = JudgeJson();
    component["timeout_ms"] = options_.judge_deadline_ms;
  }
  component["params"] = std::move(params);
  return component;
}

// One `rubric` component grading every criterion, clipped like the step
// reward; with a judge and rule criteria both holding positive points, two
// components weighted by their share of the positive points, whose weighted
// sum is HealthBench's (unclipped) example score.
json ConsultRubricEnv::RewardSpec(const ConsultCase& c) const {
  std::vector<const RubricCriterion*> all, ruled, judged;
  for (const auto& criterion : c.rubrics) {
    all.push_back(&criterion);
    (criterion.match.is_null() ? judged : ruled).push_back(&criterion);
  }
  json components = json::array();
  const double ruled_points = PositivePoints(ruled);
  const double judged_points = PositivePoints(judged);
  if (judged.empty()) {
    components.push_back(RubricComponent("rubric", all, false, 1.0, true));
  } else if (ruled_points == 0.0 || judged_points == 0.0) {
    components.push_back(RubricComponent("rubric", all, true, 1.0, true));
  } else {
    const double total = ruled_points + judged_points;
    components.push_back(RubricComponent("rubric_rules", ruled, false,
                                         ruled_points / total, false));
    components.push_back(RubricComponent("rubric_judge", judged, true,
                                         judged_points / total, false));
  }
  return {{"components", std::move(components)}};
}

CLINRL_REGISTER_ENV(consult_rubric, ConsultRubricEnv::Create);

}  // namespace clinrl::envs::consult
