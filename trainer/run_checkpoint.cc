#include "trainer/run_checkpoint.h"

#include <filesystem>
#include <sstream>
#include <utility>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "policy/lora_checkpoint.h"
#include "policy/model_dir.h"
#include "policy/safetensors.h"
#include "trainer/checkpoint.h"
#include "trainer/non_finite.h"

namespace clinrl::trainer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The checkpoint a resumed stage continues from ("" = a fresh stage).
std::string StageCheckpoint(const RunState& run, const std::string& stage) {
  const std::string& resumed = run.resume_checkpoint;
  if (resumed.empty()) return "";
  const CheckpointInfo info = OpenCheckpoint(resumed);
  if (info.state.value("stage", "") != stage ||
      info.state.value("stage_index", size_t{0}) != run.progress.stage_index) {
    return "";
  }
  return resumed;
}

std::map<std::string, torch::Tensor> ReadTensors(const std::string& path) {
  policy::SafetensorsFile file(path);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : file.Names()) tensors[name] = file.Get(name).clone();
  return tensors;
}

void RestoreOptimizer(RunState& run, const std::string& checkpoint) {
  const CheckpointInfo info = OpenCheckpoint(checkpoint);
  if (run.trainer->sharded()) {
    run.trainer->RestoreShards(checkpoint);
  } else if (fs::exists(checkpoint + "/optimizer.safetensors")) {
    run.trainer->optimizer().LoadState(
        ReadTensors(checkpoint + "/optimizer.safetensors"),
        info.state.at("optimizer_step").get<int64_t>());
  }
  if (fs::exists(checkpoint + "/best_sft.safetensors")) {
    for (auto& [name, tensor] :
         ReadTensors(checkpoint + "/best_sft.safetensors")) {
      run.progress.best_sft_weights[name] = tensor;
    }
  }
}

// The frozen KL anchor is the policy as the GRPO stage found it; a resumed
// run must not re-anchor to the weights it resumes, so it reads the
// checkpoint's copy.
void MakeReference(RunState& run) {
  run.reference = policy::Transformer(run.model->options());
  run.reference->to(run.model->device());
  torch::NoGradGuard no_grad;
  auto reference = run.reference->named_parameters();
  const std::string& resumed = run.resume_checkpoint;
  if (!resumed.empty() && fs::exists(resumed + "/reference.safetensors")) {
    policy::SafetensorsFile file(resumed + "/reference.safetensors");
    for (const auto& name : file.Names()) {
      reference[name].copy_(file.Get(name));
    }
    return;
  }
  for (const auto& p : run.model->named_parameters()) {
    reference[p.key()].copy_(p.value());
  }
}

// A resumed run replays the steps after its checkpoint: the lines the lost
// run wrote for them (metrics.jsonl, trajectories.jsonl) go, so each step's
// lines are written once. Lines without a step, and lines that do not parse
// (the report skips those), stay.
void DropLinesAfterStep(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::istringstream in(ReadFile(path));
  std::string kept, line;
  int64_t dropped = 0;
  while (std::getline(in, line)) {
    const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.contains("step") &&
        record["step"].is_number_integer() &&
        record["step"].get<int64_t>() > step) {
      ++dropped;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped == 0) return;
  WriteFileAtomic(path, kept);
  CLINRL_LOG_INFO("--resume: dropped {} {} of steps after {} from {}", dropped,
                  dropped == 1 ? "line" : "lines", step, path);
}

}  // namespace

// --resume-from: the named step folder of this run, checked like any
// checkpoint. The newer ones belong to the timeline being abandoned: they
// move to abandoned_after_step_N/ (kept, not deleted), so a later --resume
// does not pick them up again.
std::string ChosenCheckpoint(const RunState& run) {
  const fs::path checkpoints = fs::absolute(run.run_dir.checkpoints());
  fs::path chosen = fs::absolute(run.options.resume_from).lexically_normal();
  // A shell's completion leaves a trailing slash: ".../step_N/".
  if (chosen.filename().empty()) chosen = chosen.parent_path();
  if (chosen.parent_path() != checkpoints.lexically_normal() ||
      chosen.filename().string().rfind("step_", 0) != 0 ||
      !fs::is_directory(chosen)) {
    throw ConfigError(fmt::format(
        "--resume-from: got '{}', expected a step_N folder of this run's "
        "checkpoints ({})",
        run.options.resume_from, checkpoints.string()));
  }
  const int64_t step = OpenCheckpoint(chosen.string()).step;
  const fs::path aside =
      checkpoints / fmt::format("abandoned_after_step_{}", step);
  for (const std::string& newer : ListCheckpoints(checkpoints.string())) {
    const fs::path path(newer);
    if (path.filename().string() <= chosen.filename().string()) continue;
    fs::create_directories(aside);
    fs::rename(path, aside / path.filename());
    CLINRL_LOG_WARN("--resume-from: moved the newer {} to {}", newer,
                    aside.string());
  }
  return chosen.string();
}

void RestoreProgress(RunState& run) {
  const std::string& checkpoints = run.run_dir.checkpoints();
  // A damaged newest checkpoint must not strand the older good ones.
  std::vector<std::string> skipped;
  run.resume_checkpoint = run.options.resume_from.empty()
                              ? LatestValidCheckpoint(checkpoints, &skipped)
                              : ChosenCheckpoint(run);
  for (const std::string& why : skipped) {
    CLINRL_LOG_WARN("--resume: skipping {}", why);
  }
  const std::string& latest = run.resume_checkpoint;
  if (latest.empty() && !skipped.empty()) {
    std::string tried;
    for (const std::string& why : skipped) {
      tried += (tried.empty() ? "" : "; ") + why;
    }
    throw IoError(fmt::format(
        "--resume: none of the {} checkpoints in {} passes its checks: {}",
        skipped.size(), checkpoints, tried));
  }
  if (latest.empty()) {
    CLINRL_LOG_WARN("--resume: no checkpoint in {}; starting from scratch",
                    checkpoints);
    return;
  }
  const json state = OpenCheckpoint(latest).state;
  policy::LoadWeights(run.model, policy::CheckpointReader(latest + "/model"));
  if (run.model->has_lora()) {
    policy::LoadLoraAdapter(run.model, latest + "/adapter");
  }
  RunProgress& progress = run.progress;
  progress.stage_index = state.at("stage_index").get<size_t>();
  progress.stage_step = state.at("stage_step").get<int64_t>();
  progress.global_step = state.at("global_step").get<int64_t>();
  progress.policy_version = state.at("policy_version").get<int64_t>();
  progress.evals = state.value("evals", json::array());
  progress.best_sft_accuracy = state.value("best_sft_accuracy", -1.0);
  DropLinesAfterStep(run.run_dir.metrics_path(), progress.global_step);
  DropLinesAfterStep(run.run_dir.trajectories_path(), progress.global_step);
  CLINRL_LOG_INFO(
      "resumed from {} (stage {}, step {}{})", latest,
      run.config.trainer.stages[progress.stage_index], progress.stage_step,
      skipped.empty()
          ? std::string()
          : fmt::format("; {} newer checkpoints skipped", skipped.size()));
}

void SaveRunCheckpoint(RunState& run, const std::string& stage) {
  const RunProgress& progress = run.progress;
  // The tensor files beside the model, gathered once: checked here, before
  // the other learner ranks start writing their shards, then written.
  NamedTensors moments, reference;
  const bool write_moments = run.trainer && !run.trainer->sharded();
  if (write_moments) {
    for (const auto& [k, v] : run.trainer->optimizer().StateTensors()) {
      moments.emplace_back(k, v);
    }
  }
  if (run.reference) {
    for (const auto& p : run.reference->named_parameters()) {
      reference.emplace_back(p.key(), p.value());
    }
  }
  const NamedTensors best(progress.best_sft_weights.begin(),
                          progress.best_sft_weights.end());
  // Everything the checkpoint stores must be finite.
  NamedTensors stored;
  for (const auto& p : run.model->named_parameters()) {
    stored.emplace_back(p.key(), p.value());
  }
  const std::pair<const char*, const NamedTensors*> groups[] = {
      {"optimizer.", &moments},
      {"reference.", &reference},
      {"best_sft.", &best}};
  for (const auto& [prefix, group] : groups) {
    for (const auto& [k, v] : *group) stored.emplace_back(prefix + k, v);
  }
  RequireFiniteCheckpoint(run.run_dir.checkpoints(), progress.global_step,
                          stored);
  const json state = {
      {"stage_index", progress.stage_index},
      {"stage", stage},
      {"stage_step", progress.stage_step},
      {"global_step", progress.global_step},
      {"policy_version", progress.policy_version},
      {"optimizer_step", run.trainer ? run.trainer->optimizer_step() : 0},
      {"evals", progress.evals},
      {"best_sft_accuracy", progress.best_sft_accuracy}};
  const auto write_files = [&](const std::string& dir) {
    policy::SaveModel(run.model, dir + "/model");
    run.tokenizer->Save(dir + "/model");
    // LoRA: model/ holds the frozen base, adapter/ what trained (PEFT's
    // format; model/ is the base it applies to).
    if (run.model->has_lora()) {
      policy::SaveLoraAdapter(run.model, dir + "/adapter",
                              run.config.policy.model_dir);
    }
    if (write_moments) {
      policy::SaveSafetensors(dir + "/optimizer.safetensors", moments);
    }
    if (run.reference) {
      policy::SaveSafetensors(dir + "/reference.safetensors", reference);
    }
    if (!best.empty()) {
      policy::SaveSafetensors(dir + "/best_sft.safetensors", best);
    }
  };
  const std::string& checkpoints = run.run_dir.checkpoints();
  if (run.trainer && run.trainer->sharded()) {
    // Every learner rank writes its shard into the same step (ZeRO-3: of
    // the parameters too; model/ is rank 0's whole copy, the export).
    if (run.learners) {
      run.learners->Checkpoint(checkpoints, progress.global_step);
    }
    WriteShardedCheckpoint(
        run.learners ? run.learners->comm() : *run.single_rank, checkpoints,
        progress.global_step, write_files,
        [&](const std::string& dir) { run.trainer->SaveShards(dir); }, state);
  } else {
    WriteCheckpoint(checkpoints, progress.global_step, write_files, state);
  }
  // Every rank is done with this write; any temporary folder left is stale.
  RemoveStaleCheckpointTemps(checkpoints);
  PruneCheckpoints(checkpoints, run.config.trainer.keep_checkpoints);
}

void StartStage(RunState& run, const std::string& stage) {
  const bool grpo = stage == "grpo";
  const TrainerConfig& tc = run.config.trainer;
  if (grpo && (tc.kl_coef > 0 || tc.kl_in_reward > 0) && !run.reference) {
    MakeReference(run);
  }
  PolicyTrainerOptions trainer_options = StageTrainerOptions(run.config, stage);
  const std::string resume_from = StageCheckpoint(run, stage);
  const bool zero3 = trainer_options.sharding == Sharding::kZero3;
  if (run.learners) {
    trainer_options.communicator = &run.learners->comm();
    run.learners->StartStage(stage, run.model, run.reference, resume_from);
  } else if (zero3 || (!resume_from.empty() &&
                       (fs::exists(resume_from + "/optimizer_layout.json") ||
                        fs::exists(resume_from + "/zero3_layout.json")))) {
    // One learner resuming the shards of a data-parallel run: ZeRO-1 or
    // ZeRO-3 over one rank reads every shard (the same AdamW arithmetic),
    // and refuses shards of the other kind, naming both.
    if (!run.single_rank) {
      run.single_rank = distributed::MakeSingleRankCommunicator();
    }
    trainer_options.communicator = run.single_rank.get();
  }
  run.trainer = std::make_unique<PolicyTrainer>(
      run.model, trainer_options,
      grpo ? run.reference : policy::Transformer{nullptr});
  if (!resume_from.empty()) RestoreOptimizer(run, resume_from);
}

}  // namespace clinrl::trainer
