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
};

// Throws ConfigError naming trainer.advantage for an unknown name.
AdvantageMode ParseAdvantageMode(const std::string& name);

// `group_ids[i]` names the group of `rewards[i]`; groups need not be
// contiguous. A group of one gets advantage 0 (nothing to compare with).
std::vector<double> GroupAdvantages(const std::vector<double>& rewards,
                                    const std::vector<int64_t>& group_ids,
                                    AdvantageMode mode, double eps = 1e-6);

// Dynamic sampling (DAPO): the indices of samples whose group has reward
// variance, i.e. drops groups whose rewards are all equal (they carry no
// GRPO signal). `dropped_groups` receives how many groups were dropped.
std::vector<size_t> KeepInformativeGroups(const std::vector<double>& rewards,
                                          const std::vector<int64_t>& group_ids,
                                          int64_t* dropped_groups = nullptr,
                                          int64_t* total_groups = nullptr);

}  // namespace clinrl::trainer
