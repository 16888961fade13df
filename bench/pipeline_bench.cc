// `clinrl bench pipeline`: GRPO steps/s of a distributed run whose rollout
// worker and learner are two single-threaded processes (`clinrl distributed
// run --role rollout|learner`, envs and rewards in the worker), played
// synchronously and then with distributed.overlap (the worker plays step
// k+1 with weights k while the learner updates on step k). The same config
// and seed otherwise; the figure is the ratio of their mean step times,
// measured from each run's metrics.jsonl (time/step_s, the first step left
// out as warm-up).
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "bench/bench_registry.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/jsonl.h"

namespace clinrl::bench {
namespace {

using nlohmann::json;

// The default episode: two echo turns of up to 48 generated tokens, where
// the synchronous step spends about a third of its time waiting for
// episodes (docs/distributed.md has the figures); --opt turns and
// turn_tokens move that share.
constexpr int64_t kDefaultTurns = 2;
constexpr int64_t kDefaultTurnTokens = 48;

// The workload of one run: GRPO steps, task groups per step, and the
// episode shape (echo turns, generated tokens per turn) that sets how long
// the rollout takes against the update.
struct PipelineWorkload {
  int64_t steps = 0;
  int64_t tasks = 0;
  int64_t turns = 0;
  int64_t turn_tokens = 0;
  bool quick = false;
};

json PipelineConfig(const std::string& out_dir, const std::string& name,
                    bool overlap, const PipelineWorkload& w) {
  const bool quick = w.quick;
  return {{"run",
           {{"name", name}, {"out_dir", out_dir}, {"seed", 3}, {"threads", 1}}},
          {"policy",
           {{"init",
             {{"hidden_size", quick ? 32 : 128},
              {"intermediate_size", quick ? 64 : 352},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"max_position_embeddings", 1024}}},
            {"tokenizer", "byte"}}},
          {"envs", json::array({{{"name", "echo"},
                                 {"options", {{"max_turns", w.turns}}}}})},
          {"rollout",
           {{"group_size", 8},
            {"tasks_per_step", w.tasks},
            {"max_turns", w.turns},
            {"max_tokens_per_turn", w.turn_tokens}}},
          {"trainer",
           {{"stages", {"grpo"}},
            {"steps", w.steps},
            {"lr", 1e-4},
            {"micro_batch", 16},
            {"eval_every", 0},
            {"val_before_train", false},
            {"trajectory_sample_every", 0}}},
          {"distributed",
           {{"rollout_ranks", 1},
            {"env_server_ranks", 0},
            {"reward_server_ranks", 0},
            {"max_policy_lag", 1},
            {"overlap", overlap},
            {"timeout_s", 300}}},
          {"eval", {{"validation_episodes", 1}, {"test_episodes", 1}}}};
}

struct PipelineRun {
  double step_s = 0;     // mean, warm-up step left out
  double rollout_s = 0;  // of which waiting for episodes (time/rollout_s)
  double learn_s = 0;    // and the update (time/learn_s)
  double lag_mean = 0;   // remote/policy_lag_mean over the same steps
  int64_t steps = 0;
};

PipelineRun RunPipeline(const std::string& dir, bool overlap,
                        const PipelineWorkload& workload) {
  const std::string name = overlap ? "overlap" : "synchronous";
  const std::string config = dir + "/" + name + ".json";
  WriteFileAtomic(config, PipelineConfig(dir, name, overlap, workload).dump(2));
  const std::string self = ShellQuote(SelfExecutable());
  const std::string log = ShellQuote(dir + "/" + name);
  // The worker in the background, the learner in front; the learner's exit
  // status is the command's, after the worker has stopped too.
  const std::string command = fmt::format(
      "{0} distributed run {1} --role rollout --index 0 > {2}-rollout.log "
      "2>&1 & {0} distributed run {1} --role learner --index 0 > "
      "{2}-learner.log 2>&1; status=$?; wait; exit $status",
      self, ShellQuote(config), log);
  std::cout << "running " << name << ": " << command << std::endl;
  LastLineOf(command);
  PipelineRun run;
  double lag = 0;
  ReadJsonl(dir + "/" + name + "/metrics.jsonl", [&](const json& j, int64_t) {
    if (j.value("stage", "") != "grpo" || j.value("step", 0) <= 1) return;
    run.step_s += j.at("time/step_s").get<double>();
    run.rollout_s += j.value("time/rollout_s", 0.0);
    run.learn_s += j.value("time/learn_s", 0.0);
    lag += j.value("remote/policy_lag_mean", 0.0);
    ++run.steps;
  });
  if (run.steps < 1) {
    throw InternalError(fmt::format(
        "bench pipeline: the {} run logged no GRPO step after the first "
        "(see {}-learner.log)",
        name, dir + "/" + name));
  }
  const auto n = static_cast<double>(run.steps);
  run.step_s /= n;
  run.rollout_s /= n;
  run.learn_s /= n;
  run.lag_mean = lag / n;
  std::cout << name << ": " << run.step_s << " s per GRPO step (waiting for "
            << "episodes " << run.rollout_s << " s, update " << run.learn_s
            << " s), policy lag " << run.lag_mean << " (" << run.steps
            << " steps)" << std::endl;
  return run;
}

json RunPipelineBench(const BenchOptions& options) {
  PipelineWorkload w;
  w.quick = options.quick;
  w.steps = IntOption(options, "steps", w.quick ? 3 : 8);
  w.tasks = IntOption(options, "tasks", w.quick ? 2 : 8);
  w.turns = IntOption(options, "turns", kDefaultTurns);
  w.turn_tokens =
      IntOption(options, "turn_tokens", w.quick ? 16 : kDefaultTurnTokens);
  if (w.steps < 2 || w.tasks < 1 || w.turns < 1 || w.turn_tokens < 1) {
    throw BadRequest(fmt::format(
        "--opt steps={} tasks={} turns={} turn_tokens={}: expected steps >= 2 "
        "(the first is warm-up) and the others >= 1",
        w.steps, w.tasks, w.turns, w.turn_tokens));
  }
  const std::string dir =
      MakeBenchTempDir("bench-pipeline", "making the bench's run folder");
  const PipelineRun sync = RunPipeline(dir, false, w);
  const PipelineRun overlap = RunPipeline(dir, true, w);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  const double ratio = sync.step_s / overlap.step_s;
  std::cout << "overlapped / synchronous: " << ratio << "x GRPO steps/s"
            << std::endl;
  return {{"processes", {{"rollout", 1}, {"learner", 1}}},
          {"threads_per_process", 1},
          {"steps_timed", sync.steps},
          {"tasks_per_step", w.tasks},
          {"turns", w.turns},
          {"turn_tokens", w.turn_tokens},
          {"synchronous_step_s", sync.step_s},
          {"synchronous_rollout_wait_s", sync.rollout_s},
          {"synchronous_learn_s", sync.learn_s},
          {"overlap_step_s", overlap.step_s},
          {"overlap_rollout_wait_s", overlap.rollout_s},
          {"overlap_learn_s", overlap.learn_s},
          {"synchronous_steps_per_s", 1.0 / sync.step_s},
          {"overlap_steps_per_s", 1.0 / overlap.step_s},
          {"overlap_policy_lag_mean", overlap.lag_mean},
          {"overlap_speedup", ratio},
          {"quick", w.quick}};
}

}  // namespace

CLINRL_REGISTER_BENCH(pipeline,
                      "GRPO steps/s with the rollout worker and the learner "
                      "in two single-threaded processes, synchronous vs "
                      "overlapped (distributed.overlap)",
                      RunPipelineBench,
                      {"steps", "GRPO steps per run (--opt steps=N)"},
                      {"tasks", "task groups per step (--opt tasks=N)"},
                      {"turns", "echo turns per episode (--opt turns=N)"},
                      {"turn_tokens",
                       "generated tokens per turn (--opt turn_tokens=N)"});

}  // namespace clinrl::bench
