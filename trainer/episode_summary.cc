#include "trainer/episode_summary.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace clinrl::trainer {

std::optional<bool> EpisodeCorrect(const Trajectory& episode) {
  const nlohmann::json& info = episode.info;
  if (!info.is_object() || !info.contains("metrics") ||
      !info["metrics"].is_object()) {
    return std::nullopt;
  }
  const nlohmann::json& m = info["metrics"];
  if (!m.contains("correct") || !m["correct"].is_number()) return std::nullopt;
  return m["correct"].get<double>() >= 0.5;
}

std::map<std::string, double> SummarizeEpisodes(
    const std::vector<const Trajectory*>& episodes) {
  std::map<std::string, double> out;
  const double n = static_cast<double>(episodes.size());
  out["episodes"] = n;
  if (episodes.empty()) return out;
  double sum = 0, sum_sq = 0, correct = 0, correct_n = 0, cost = 0;
  double turns = 0, tokens = 0, max_tokens = 0, invalid = 0, flagged = 0;
  std::map<std::string, double> component_sums;
  std::map<std::string, double> terminations;
  for (const Trajectory* t : episodes) {
    sum += t->reward.total;
    sum_sq += t->reward.total * t->reward.total;
    for (const auto& [name, c] : t->reward.components) {
      component_sums[name] += c.score;
      if (c.details.is_object() && c.details.contains("error")) flagged += 1;
    }
    const nlohmann::json& info = t->info;
    if (info.is_object() && info.contains("metrics") &&
        info["metrics"].is_object()) {
      const nlohmann::json& m = info["metrics"];
      if (m.contains("correct") && m["correct"].is_number()) {
        correct += m["correct"].get<double>();
        correct_n += 1;
      }
      if (m.contains("cost") && m["cost"].is_number())
        cost += m["cost"].get<double>();
    }
    double policy_turns = 0, episode_tokens = 0;
    for (const Turn& turn : t->turns) {
      if (turn.role == "assistant") {
        policy_turns += 1;
        episode_tokens += static_cast<double>(turn.token_ids.size());
      }
    }
    turns += policy_turns;
    tokens += episode_tokens;
    max_tokens = std::max(max_tokens, episode_tokens);
    if (info.is_object() && info.contains("invalid_actions") &&
        info["invalid_actions"].is_number() && policy_turns > 0) {
      invalid += info["invalid_actions"].get<double>() / policy_turns;
    }
    terminations[TerminationName(t->termination)] += 1;
  }
  const double mean = sum / n;
  out["reward/mean"] = mean;
  out["reward/std"] = std::sqrt(std::max(0.0, sum_sq / n - mean * mean));
  for (const auto& [name, s] : component_sums) out["reward/" + name] = s / n;
  if (correct_n > 0) out["accuracy"] = correct / correct_n;
  out["cost/mean"] = cost / n;
  out["turns/mean"] = turns / n;
  out["length/mean"] = tokens / n;
  out["length/max"] = max_tokens;
  out["invalid_action_rate"] = invalid / n;
  out["flagged"] = flagged;
  for (const auto& [name, count] : terminations) {
    out["termination/" + name] = count / n;
  }
  return out;
}

void AddPerEnvSummaries(const std::vector<const Trajectory*>& episodes,
                        std::map<std::string, double>* summary) {
  std::map<std::string, std::vector<const Trajectory*>> by_env;
  for (const Trajectory* t : episodes) by_env[t->env].push_back(t);
  if (by_env.size() < 2) return;
  for (const auto& [env, mine] : by_env) {
    const std::map<std::string, double> s = SummarizeEpisodes(mine);
    for (const char* key :
         {"episodes", "reward/mean", "accuracy", "turns/mean", "cost/mean"}) {
      const auto it = s.find(key);
      if (it != s.end()) (*summary)["env/" + env + "/" + key] = it->second;
    }
  }
}

void StopOnEnvErrors(const std::vector<const Trajectory*>& episodes,
                     double max_fraction, const std::string& what,
                     const std::string& service) {
  size_t failed = 0;
  const Trajectory* first = nullptr;
  for (const Trajectory* t : episodes) {
    if (t->termination != Termination::kEnvError) continue;
    if (first == nullptr) first = t;
    ++failed;
  }
  if (failed == 0) return;
  const double fraction =
      static_cast<double>(failed) / static_cast<double>(episodes.size());
  if (fraction <= max_fraction) return;
  // The rollout worker records the failed request as info.env_error, a
  // scripted episode the env's exception as info.error.
  std::string reason = "no reason recorded";
  const auto& info = first->info;
  if (info.is_object() && info.contains("env_error") &&
      info["env_error"].is_object()) {
    reason = fmt::format("{}: {}", info["env_error"].value("code", "?"),
                         info["env_error"].value("message", ""));
  } else if (info.is_object() && info.contains("error") &&
             info["error"].is_string()) {
    reason = info["error"].get<std::string>();
  }
  throw IoError(fmt::format(
      "{}: {} of {} episodes ended env_error, more than "
      "trainer.max_env_error_fraction = {}; the run stops instead of "
      "training on them. The env service ({}) is lost or failing; first, "
      "episode {}: {}",
      what, failed, episodes.size(), max_fraction, service, first->episode_id,
      reason));
}

std::string FormatSummaryValue(const std::map<std::string, double>& summary,
                               const std::string& key, int decimals) {
  auto it = summary.find(key);
  if (it == summary.end() || !std::isfinite(it->second)) return "-";
  return fmt::format("{:.{}f}", it->second, decimals);
}

}  // namespace clinrl::trainer
