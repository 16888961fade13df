#include "trainer/group_advantages.h"

#include <cmath>
#include <map>

#include "core/error.h"

namespace clinrl::trainer {

AdvantageMode ParseAdvantageMode(const std::string& name) {
  if (name == "grpo") return AdvantageMode::kGrpo;
  if (name == "dr_grpo") return AdvantageMode::kDrGrpo;
  throw ConfigError(fmt::format(
      "trainer.advantage: got '{}', expected one of: grpo, dr_grpo", name));
}

namespace {
struct GroupStats {
  double sum = 0.0;
  double sum_sq_dev = 0.0;
  double mean = 0.0;
  double min = INFINITY;
  double max = -INFINITY;
  int64_t count = 0;
};

std::map<int64_t, GroupStats> ComputeGroupStats(
    const std::vector<double>& rewards, const std::vector<int64_t>& group_ids) {
  CLINRL_CHECK(rewards.size() == group_ids.size(),
               "{} rewards but {} group ids", rewards.size(), group_ids.size());
  std::map<int64_t, GroupStats> stats;
  for (size_t i = 0; i < rewards.size(); ++i) {
    GroupStats& s = stats[group_ids[i]];
    s.sum += rewards[i];
    s.count += 1;
    s.min = std::min(s.min, rewards[i]);
    s.max = std::max(s.max, rewards[i]);
  }
  for (auto& [id, s] : stats) s.mean = s.sum / static_cast<double>(s.count);
  // Two passes: the deviation form keeps precision for large rewards.
  for (size_t i = 0; i < rewards.size(); ++i) {
    GroupStats& s = stats[group_ids[i]];
    const double d = rewards[i] - s.mean;
    s.sum_sq_dev += d * d;
  }
  return stats;
}
}  // namespace

std::vector<double> GroupAdvantages(const std::vector<double>& rewards,
                                    const std::vector<int64_t>& group_ids,
                                    AdvantageMode mode, double eps) {
  const auto stats = ComputeGroupStats(rewards, group_ids);
  std::vector<double> out(rewards.size(), 0.0);
  for (size_t i = 0; i < rewards.size(); ++i) {
    const GroupStats& s = stats.at(group_ids[i]);
    if (s.count < 2) continue;
    const double centred = rewards[i] - s.mean;
    if (mode == AdvantageMode::kDrGrpo) {
      out[i] = centred;
    } else {
      const double std_unbiased =
          std::sqrt(s.sum_sq_dev / static_cast<double>(s.count - 1));
      out[i] = centred / (std_unbiased + eps);
    }
  }
  return out;
}

std::vector<size_t> KeepInformativeGroups(const std::vector<double>& rewards,
                                          const std::vector<int64_t>& group_ids,
                                          int64_t* dropped_groups,
                                          int64_t* total_groups) {
  const auto stats = ComputeGroupStats(rewards, group_ids);
  std::vector<size_t> keep;
  for (size_t i = 0; i < rewards.size(); ++i) {
    const GroupStats& s = stats.at(group_ids[i]);
    if (s.max > s.min) keep.push_back(i);
  }
  if (dropped_groups) {
    int64_t dropped = 0;
    for (const auto& [id, s] : stats) dropped += s.max > s.min ? 0 : 1;
    *dropped_groups = dropped;
  }
  if (total_groups) *total_groups = static_cast<int64_t>(stats.size());
  return keep;
}

}  // namespace clinrl::trainer
