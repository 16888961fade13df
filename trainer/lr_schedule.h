// Learning-rate schedule: linear warmup, then cosine decay to a floor
// (min_lr_ratio x peak), as in TRL's and verl's default GRPO recipes.
#pragma once

#include <cstdint>

namespace clinrl::trainer {

struct LrSchedule {
  double peak_lr = 1e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr_ratio = 0.1;

  // Learning rate of optimizer step `step` (0-based).
  double At(int64_t step) const;
};

}  // namespace clinrl::trainer
