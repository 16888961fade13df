#include "trainer/episode_advantages.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"

namespace clinrl::trainer {

bool RewardFlagged(const RewardResult& reward) {
  for (const auto& [name, component] : reward.components) {
    if (component.details.is_object() && component.details.contains("error")) {
      return true;
    }
  }
  return false;
}

bool ParseRewardNormalization(const std::string& name) {
  if (name == "total") return false;
  if (name == "per_component") return true;
  throw ConfigError(fmt::format(
      "trainer.reward_normalization: got '{}', expected one of: total, "
      "per_component",
      name));
}

EpisodeAdvantages ComputeEpisodeAdvantages(
    const std::vector<const RewardResult*>& rewards,
    const std::vector<int64_t>& group_ids,
    const EpisodeAdvantageOptions& options) {
  CLINRL_CHECK(rewards.size() == group_ids.size(),
               "{} rewards but {} group ids", rewards.size(), group_ids.size());
  EpisodeAdvantages out;
  out.advantages.assign(rewards.size(), 0.0);
  out.groups = static_cast<int64_t>(
      std::set<int64_t>(group_ids.begin(), group_ids.end()).size());
  // The episodes whose reward is a measurement.
  std::vector<size_t> usable;
  for (size_t i = 0; i < rewards.size(); ++i) {
    if (RewardFlagged(*rewards[i])) {
      ++out.flagged;
    } else {
      usable.push_back(i);
    }
  }
  std::vector<int64_t> groups;
  for (size_t i : usable) groups.push_back(group_ids[i]);

  // Per signal (the total, or each component): its values over the usable
  // episodes, their weight in the advantage, and whether they count in the
  // informative test.
  struct Signal {
    double weight;
    std::vector<double> values;
    bool tested;
  };
  std::vector<Signal> signals;
  const auto penalty = [&](size_t i) {
    const auto it = rewards[i]->components.find(options.penalty_component);
    return options.penalty_component.empty() ||
                   it == rewards[i]->components.end()
               ? 0.0
               : it->second.weight * it->second.score;
  };
  if (!options.per_component || usable.empty()) {
    std::vector<double> totals, tested;
    for (size_t i : usable) {
      totals.push_back(rewards[i]->total);
      tested.push_back(rewards[i]->total - penalty(i));
    }
    signals.push_back({1.0, std::move(totals), false});
    signals.push_back({0.0, std::move(tested), true});
  } else {
    const RewardResult& first = *rewards[usable.front()];
    for (const auto& [name, component] : first.components) {
      std::vector<double> scores;
      for (size_t i : usable) {
        const auto it = rewards[i]->components.find(name);
        if (it == rewards[i]->components.end() ||
            rewards[i]->components.size() != first.components.size()) {
          throw BadRequest(fmt::format(
              "episode {}: reward components differ from episode {}'s; "
              "trainer.reward_normalization per_component needs the same "
              "components in every episode",
              i, usable.front()));
        }
        scores.push_back(it->second.score);
      }
      signals.push_back({component.weight, std::move(scores),
                         name != options.penalty_component});
    }
  }

  // A group is informative when some signal varies within it.
  std::map<int64_t, std::pair<double, double>> range;  // per group, signal
  std::set<int64_t> informative;
  for (const Signal& signal : signals) {
    if (!signal.tested) continue;
    const std::vector<double>& values = signal.values;
    range.clear();
    for (size_t k = 0; k < values.size(); ++k) {
      auto [it, fresh] = range.try_emplace(groups[k], values[k], values[k]);
      it->second.first = std::min(it->second.first, values[k]);
      it->second.second = std::max(it->second.second, values[k]);
    }
    for (const auto& [g, r] : range) {
      if (r.second > r.first) informative.insert(g);
    }
  }
  out.informative_groups.assign(informative.begin(), informative.end());

  // The update's episodes; REINFORCE++'s batch statistics are theirs alone.
  std::vector<size_t> train;  // positions in `usable`
  for (size_t k = 0; k < usable.size(); ++k) {
    if (!options.dynamic_sampling || informative.count(groups[k])) {
      train.push_back(k);
    }
  }
  std::vector<int64_t> train_groups;
  for (size_t k : train) train_groups.push_back(groups[k]);
  for (const Signal& signal : signals) {
    if (signal.weight == 0) continue;
    std::vector<double> v;
    for (size_t k : train) v.push_back(signal.values[k]);
    const std::vector<double> a =
        GroupAdvantages(v, train_groups, options.mode);
    for (size_t j = 0; j < train.size(); ++j) {
      out.advantages[usable[train[j]]] += signal.weight * a[j];
    }
  }
  for (size_t k : train) out.kept.push_back(usable[k]);
  if (options.dynamic_sampling) {
    const std::set<int64_t> usable_groups(groups.begin(), groups.end());
    out.dropped_groups = static_cast<int64_t>(usable_groups.size()) -
                         static_cast<int64_t>(informative.size());
  }
  return out;
}

}  // namespace clinrl::trainer
