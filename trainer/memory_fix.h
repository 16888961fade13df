// What would make a run that does not fit fit: the memory planner
// (memory_plan.h) is run again on variants of the config, each one change,
// from the mildest (activation checkpointing, then micro-batches one
// sequence smaller) to the strongest (fewer tokens per episode), those aimed
// at the largest item first. The answer is the first variant that fits
// within 90% of the device (the plan is an estimate), as the option to set
// and the peak it gives; when no one option is enough, the options added up
// in the same order (with the micro-batch, the learner ranks or the episode
// length searched on top of each sum).
#pragma once

#include <string>

#include "core/clinrl_config.h"
#include "policy/model_config.h"
#include "trainer/memory_plan.h"

namespace clinrl::trainer {

// "trainer.activation_checkpointing=true (peaks then: learner 61.20 GiB)",
// several options joined by ", ", or "" when `plan` fits or not even all
// the options together make it fit.
std::string FindMemoryFix(const ClinrlConfig& config,
                          const policy::ModelConfig& model,
                          const MemoryPlanOptions& options,
                          const MemoryPlan& plan);

// PlanMemory and, when the run does not fit, FindMemoryFix into plan.fix.
MemoryPlan PlanMemoryWithFix(const ClinrlConfig& config,
                             const policy::ModelConfig& model,
                             const MemoryPlanOptions& options);

}  // namespace clinrl::trainer
