// Summary statistics of a batch of finished, scored episodes: what the
// console line, metrics.jsonl and the evaluation tables show.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/trajectory.h"

namespace clinrl::trainer {

// Keys: episodes, reward/mean, reward/std, reward/<component> (component
// means), accuracy (mean info.metrics.correct, when the env reports it),
// cost/mean (info.metrics.cost), turns/mean (policy turns), length/mean
// (sampled tokens per episode), length/max, invalid_action_rate (invalid
// actions per policy turn), termination/<name> (fractions), flagged (reward
// components that failed).
// Whether the env judged the episode correct (its info.metrics.correct,
// the figure behind `accuracy`); nullopt when the env reports none.
std::optional<bool> EpisodeCorrect(const Trajectory& episode);

std::map<std::string, double> SummarizeEpisodes(
    const std::vector<const Trajectory*>& episodes);

// Env mixtures: when `episodes` come from more than one env, each env's own
// figures under env/<name>/ (episodes, reward/mean, accuracy, turns/mean,
// cost/mean), added to `summary`. Nothing for one env.
void AddPerEnvSummaries(const std::vector<const Trajectory*>& episodes,
                        std::map<std::string, double>* summary);

// A lost or failing env server shows as episodes ending env_error: when
// more than `max_fraction` of `episodes` did, throws IoError naming `what`
// (e.g. "grpo step 3"), `service` (where the env runs) and the first
// failure's message, so nothing is trained on or reported from them.
void StopOnEnvErrors(const std::vector<const Trajectory*>& episodes,
                     double max_fraction, const std::string& what,
                     const std::string& service);

// One figure of a summary as a table cell: `key`'s value with `decimals`
// decimals, or "-" when the summary lacks it or it is not finite. A summary
// may lack a figure by design (no accuracy for an env without a `correct`
// metric), and "nan" in a table reads as a failed run.
std::string FormatSummaryValue(const std::map<std::string, double>& summary,
                               const std::string& key, int decimals);

}  // namespace clinrl::trainer
