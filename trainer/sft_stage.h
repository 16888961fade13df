// The SFT stage of a `clinrl train` run: supervised steps on demonstrations
// (a file, or episodes of the env's scripted policy), validation every
// sft.eval_every steps, and the best validation weights kept as the SFT
// policy, which the test split then evaluates.
#pragma once

#include "trainer/run_state.h"

namespace clinrl::trainer {

// Runs the rest of the SFT stage from run.progress. Returns false when
// --stop-after stopped the run inside it.
bool RunSftStage(RunState& run);

}  // namespace clinrl::trainer
