// GRPO group advantages (docs/design.md, GRPO): G completions of one task
// form a group; each completion's advantage is its reward relative to the
// group.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clinrl::trainer {

enum class AdvantageMode {
  kGrpo,    // (R_i - mean_g) / (std_g + eps), std unbiased as in TRL and verl
  kDrGrpo,  // R_i - mean_g (Dr. GRPO: no std normalisation)
  // R_i - mean of the other G - 1 rewards of its group (RLOO, Ahmadian et
  // al. 2024; verl's rloo): G / (G - 1) (R_i - mean_g).
  kRloo,
  // REINFORCE++ with a group baseline (Hu 2025; verl's
  // reinforce_plus_plus_baseline): R_i - mean_g, then standardised over the
  // whole batch (mean 0, unbiased std 1) instead of within each group.
  kReinforcePlusPlus,
};

// Throws ConfigError naming trainer.advantage for an unknown name.
AdvantageMode ParseAdvantageMode(const std::string& name);

// `group_ids[i]` names the group of `rewards[i]`; groups need not be
// contiguous. A group of one gets advantage 0 (nothing to compare with), and
// takes no part in REINFORCE++'s batch statistics.
std::vector<double> GroupAdvantages(const std::vector<double>& rewards,
                                    const std::vector<int64_t>& group_ids,
                                    AdvantageMode mode, double eps = 1e-6);

}  // namespace clinrl::trainer
