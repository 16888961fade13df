// The GRPO stage of a `clinrl train` run. Each step (GrpoStep):
//   tasks → play and score → advantages → batch → update → metrics.
// Validation every trainer.eval_every steps, the test split at the end.
#pragma once

#include <map>
#include <string>

#include "trainer/episode_source.h"
#include "trainer/run_state.h"

namespace clinrl::trainer {

// Runs the rest of the GRPO stage from run.progress. Returns false when
// --stop-after stopped the run inside it.
bool RunGrpoStage(RunState& run);

// One GRPO step at run.progress.stage_step, its episodes from `source`.
// Returns the step's metrics; the caller advances the step counters.
std::map<std::string, double> GrpoStep(RunState& run, EpisodeSource& source);

}  // namespace clinrl::trainer
