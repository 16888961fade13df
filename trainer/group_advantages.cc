#include "trainer/group_advantages.h"

#include <cmath>
#include <map>

#include "core/error.h"

namespace clinrl::trainer {

AdvantageMode ParseAdvantageMode(const std::string& name) {
  if (name == "grpo") return AdvantageMode::kGrpo;
  if (name == "dr_grpo") return AdvantageMode::kDrGrpo;
  if (name == "rloo") return AdvantageMode::kRloo;
  if (name == "reinforce_pp") return AdvantageMode::kReinforcePlusPlus;
  throw ConfigError(fmt::format(
      "trainer.advantage: got '{}', expected one of: grpo, dr_grpo, rloo, "
      "reinforce_pp",
      name));
}

namespace {
struct GroupStats {
  double sum = 0.0;
  double sum_sq_dev = 0.0;
  double mean = 0.0;
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
  std::vector<size_t> compared;  // members of groups of two or more
  for (size_t i = 0; i < rewards.size(); ++i) {
    const GroupStats& s = stats.at(group_ids[i]);
    if (s.count < 2) continue;
    compared.push_back(i);
    const double centred = rewards[i] - s.mean;
    const double g = static_cast<double>(s.count);
    switch (mode) {
      case AdvantageMode::kDrGrpo:
      case AdvantageMode::kReinforcePlusPlus:
        out[i] = centred;
        break;
      case AdvantageMode::kRloo:
        out[i] = centred * g / (g - 1.0);
        break;
      case AdvantageMode::kGrpo:
        out[i] = centred / (std::sqrt(s.sum_sq_dev / (g - 1.0)) + eps);
        break;
    }
  }
  if (mode == AdvantageMode::kReinforcePlusPlus && compared.size() > 1) {
    double mean = 0;
    for (size_t i : compared) mean += out[i];
    mean /= static_cast<double>(compared.size());
    double sq = 0;
    for (size_t i : compared) sq += (out[i] - mean) * (out[i] - mean);
    const double sd = std::sqrt(sq / static_cast<double>(compared.size() - 1));
    for (size_t i : compared) out[i] = (out[i] - mean) / (sd + eps);
  }
  return out;
}

}  // namespace clinrl::trainer
