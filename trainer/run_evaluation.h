// Evaluation of a `clinrl train` run: greedy episodes of the current policy
// on a split, recorded in metrics.jsonl, TensorBoard and the trajectories
// file; and the final test-split table (scripted baselines around the
// trained policies) that the run prints and writes to summary.json.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rollout/endpoint_rollout.h"

namespace clinrl::trainer {

struct RunState;

struct EvalResult {
  std::string label;  // "random", "sft", "grpo", "oracle", ...
  std::string split;
  std::map<std::string, double> metrics;  // SummarizeEpisodes keys
};

// Greedy evaluation of the current policy on the first `episodes` tasks of
// `split` of each env of the run (run.validation_split: each env's own
// validation split); every episode's transcript goes to trajectories.jsonl.
// An env mixture's result has each env's figures under env/<name>/ too.
// With `endpoint`, a chat endpoint plays instead of the run's policy
// (rollout/endpoint_rollout.h; `clinrl eval --endpoint`), and length/mean
// and length/max are its completion-token counts.
EvalResult Evaluate(RunState& run, const std::string& label,
                    const std::string& split, int64_t episodes,
                    const rollout::EndpointRolloutOptions* endpoint = nullptr);

// `samples` episodes of each of the first `episodes` tasks of `split`,
// sampled at `temperature`, for pass@k (`clinrl eval --samples`): the
// summary of every episode plus pass@k for k = 1, 2, 4, ... and `samples`,
// each the mean over tasks of the unbiased estimator PassAtK(samples,
// correct samples, k). Transcripts go to trajectories.jsonl under `label`.
EvalResult EvaluateSamples(
    RunState& run, const std::string& label, const std::string& split,
    int64_t episodes, int64_t samples, double temperature,
    const rollout::EndpointRolloutOptions* endpoint = nullptr);

// The unbiased pass@k estimator of Chen et al. (2021), "Evaluating Large
// Language Models Trained on Code": the chance that at least one of k
// samples drawn without replacement from n, of which c are correct, is
// correct, 1 - C(n - c, k) / C(n, k).
double PassAtK(int64_t n, int64_t c, int64_t k);

// Adds `result` to the run's evaluations (saved in checkpoints) and writes
// it to metrics.jsonl and TensorBoard at the current global step.
void RecordEval(RunState& run, const EvalResult& result);

// The test-split table: the random scripted policy, the SFT demonstrator
// (when the demonstrations were played here), the test evaluations recorded
// by the stages, the oracle. Writes summary.json.
std::vector<EvalResult> FinalTable(RunState& run);

// The table printed at the end of a run.
std::string FormatTable(const std::vector<EvalResult>& rows);

}  // namespace clinrl::trainer
