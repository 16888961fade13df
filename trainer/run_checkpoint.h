// Checkpoints of a `clinrl train` run: what a step saves (weights,
// tokenizer, optimizer moments or their shards, the KL reference, the SFT
// stage's best weights, the run's progress), how --resume restores it, and
// how a stage starts: its trainer built, fresh or from the stage's newest
// checkpoint, on every learner rank.
#pragma once

#include <string>

#include "trainer/run_state.h"

namespace clinrl::trainer {

// --resume: the newest checkpoint's weights and progress. The optimizer and
// the KL reference come back when their stage starts (StartStage).
void RestoreProgress(RunState& run);

// Writes the checkpoint of the current global step for `stage` and prunes
// the old ones. Refuses (NonFiniteError) to store a non-finite tensor.
void SaveRunCheckpoint(RunState& run, const std::string& stage);

// Builds run.trainer for `stage` ("sft" or "grpo"). GRPO with a KL term
// first makes its frozen reference: the policy as the stage found it, or, on
// resume, the checkpoint's. Several learner ranks: the others build theirs
// from rank 0's weights. A resumed stage restores its optimizer state.
void StartStage(RunState& run, const std::string& stage);

}  // namespace clinrl::trainer
