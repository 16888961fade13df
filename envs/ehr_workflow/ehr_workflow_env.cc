#include "envs/ehr_workflow/ehr_workflow_env.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "core/error.h"
#include "envs/ehr_fhir/ehr_fhir_env.h"
#include "envs/ehr_workflow/workflow_grader.h"
#include "envs/env_options.h"
#include "envs/env_registry.h"

namespace clinrl::envs::ehr {
namespace {

// Task lists are built once per (record, split, mode, selection) and shared
// by every env object of the process, as ehr_fhir's are.
std::shared_ptr<const std::vector<WorkflowTask>> SharedTasks(
    const EhrRecordSource& source, const std::vector<json>& record,
    const std::string& split, const std::string& mode,
    const WorkflowSelection& selection) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const std::vector<WorkflowTask>>>
      cache;
  const std::string key =
      json{source.data_dir,    source.patients,     source.seed, split, mode,
           selection.families, selection.per_family}
          .dump();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache
             .emplace(key,
                      std::make_shared<const std::vector<WorkflowTask>>(
                          BuildWorkflowTasks(record, split, mode, selection)))
             .first;
  }
  return it->second;
}

}  // namespace

json WorkflowRewardSpec(const json& key) {
  const json& checkpoints = key.at("checkpoints");
  const double weight = 1.0 / static_cast<double>(checkpoints.size());
  json components = json::array();
  for (const auto& cp : checkpoints) {
    const std::string name = cp.at("name").get<std::string>();
    components.push_back({{"name", name},
                          {"plugin", "exact_match"},
                          {"weight", weight},
                          {"params",
                           {{"expected", "1"},
                            {"answer_field", "metrics.checkpoint_" + name}}}});
  }
  components.push_back(
      {{"name", "all_checkpoints"},
       {"plugin", "exact_match"},
       {"weight", 0.0},
       {"params", {{"expected", "1"}, {"answer_field", "metrics.correct"}}}});
  return {{"components", components}, {"success", "all_checkpoints"}};
}

EhrWorkflowOptions EhrWorkflowOptions::FromJson(const json& options,
                                                const std::string& path) {
  EhrWorkflowOptions o = ReadOptions<EhrWorkflowOptions>(options, path);
  for (size_t i = 0; i < o.families.size(); ++i) {
    if (!IsWorkflowFamily(o.families[i])) {
      throw ConfigError(fmt::format(
          "{}.families[{}]: unknown workflow family \"{}\" (expected one of "
          "{})",
          path, i, o.families[i], fmt::join(WorkflowFamilies(), ", ")));
    }
  }
  return o;
}

EhrWorkflowEnv::EhrWorkflowEnv(EhrWorkflowOptions options)
    : EhrEnv(SharedEhrRecord(options.source), "wf", options.max_turns,
             options.tools()),
      options_(std::move(options)) {}

std::unique_ptr<Env> EhrWorkflowEnv::Create(const json& options,
                                            const std::string& path) {
  return std::make_unique<EhrWorkflowEnv>(
      EhrWorkflowOptions::FromJson(options, path));
}

const std::vector<WorkflowTask>& EhrWorkflowEnv::Tasks(
    const std::string& split) const {
  // The cache keeps every list alive for the process, so the reference
  // outlives this shared_ptr.
  return *SharedTasks(options_.source, record()->resources(), split,
                      options_.grading, options_.Selection(split));
}

EnvSpec EhrWorkflowEnv::Spec() const {
  EnvSpec s = SpecWithoutSplits("ehr_workflow");
  for (const auto& split : WorkflowSplits()) {
    s.splits[split] = static_cast<int64_t>(Tasks(split).size());
  }
  return s;
}

ResetResult EhrWorkflowEnv::Reset(const ResetRequest& request) {
  ReadOptions<NoOptions>(request.options, "options");
  const auto& splits = WorkflowSplits();
  if (std::find(splits.begin(), splits.end(), request.split) == splits.end()) {
    throw BadRequest(
        fmt::format("split: unknown split \"{}\" (expected one of {})",
                    request.split, fmt::join(splits, ", ")));
  }
  const auto& tasks = Tasks(request.split);
  if (tasks.empty()) {
    throw BadRequest(
        fmt::format("split {}: no tasks for this record", request.split));
  }
  const int64_t index =
      TaskIndexOf(request, static_cast<int64_t>(tasks.size()));
  StartEpisode();
  task_ = &tasks[static_cast<size_t>(index)];
  const EhrTask prompt_task{task_->family,
                            task_->patient,
                            task_->question,
                            {{"task_clock", task_->key.at("task_clock")}}};
  json names = json::array();
  for (const auto& cp : task_->key.at("checkpoints"))
    names.push_back(cp["name"]);
  ResetResult out;
  out.observation.push_back(
      {"user", TaskPrompt(prompt_task, session().ApiBase(), options_.grading,
                          options_.prompt == "brief", options_.tools())});
  out.info = {{"reward_spec", WorkflowRewardSpec(task_->key)},
              {"task",
               {{"family", task_->family},
                {"variant", task_->key.at("variant")},
                {"split", request.split},
                {"task_index", index},
                {"grading", options_.grading},
                {"checkpoints", names}}},
              {"action_mode", options_.action_mode},
              {"workflow", task_->key},
              {"invalid_actions", 0}};
  return out;
}

EhrEnv::EpisodeGrade EhrWorkflowEnv::Grade(const json& episode) const {
  json grade = GradeWorkflow(task_->key, episode);
  const double reward = grade["reward"].get<double>();
  json metrics = {{"checkpoints_met", grade["met"]},
                  {"checkpoints_total", grade["total"]},
                  {"checkpoint_fraction", reward}};
  for (const auto& cp : grade["checkpoints"]) {
    metrics["checkpoint_" + cp["name"].get<std::string>()] =
        cp["met"].get<bool>() ? 1 : 0;
  }
  const bool correct = grade["correct"].get<bool>();
  return {reward, correct, std::move(grade), std::move(metrics)};
}

CLINRL_REGISTER_ENV(ehr_workflow, EhrWorkflowEnv::Create);

}  // namespace clinrl::envs::ehr
