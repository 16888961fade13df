// trajectories.jsonl of one run, digested for the report's trajectory
// browser: a compact index of every episode (step, split, env, termination,
// reward total and components, policy turns) that the page filters without
// touching transcripts, and compact transcripts for a bounded selection of
// episodes, each kept as its own JSON string that the page parses only when
// the episode is opened.
//
// Why a bounded selection: a line is 2-6 KB, mostly token ids and
// log-probs; 50,000 of them would make a report of 100-300 MB. Transcripts
// drop token ids, log-probs and the reward spec (the verdicts are in the
// reward details) and cut very long messages, and at most `max_transcripts`
// are kept (docs/report.md).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::report {

struct TrajectoryDigestOptions {
  int64_t max_transcripts = 2000;
  // Longer messages keep their head and tail around a "[... N chars cut
  // ...]" mark; 0: no limit.
  int64_t max_message_chars = 4000;
};

struct TrajectoryDigest {
  int64_t count = 0;
  int64_t bad_lines = 0;  // lines that were not JSON objects, skipped
  // Per episode, in file order.
  std::vector<int64_t> step;
  std::vector<int64_t> line;     // 1-based line in trajectories.jsonl
  std::vector<int> split;        // index into splits
  std::vector<int> env;          // index into envs
  std::vector<int> termination;  // index into terminations
  std::vector<int> policy_turns;
  std::vector<double> reward;
  // components[name][i]: the component's score (NaN where absent).
  std::map<std::string, std::vector<double>> components;
  std::vector<int64_t> transcript;  // index into transcripts, or -1
  std::vector<std::string> splits, envs, terminations;
  std::vector<std::string> transcripts;  // compact JSON, one per kept episode
};

// Which of `count` episodes keep their transcript when at most `budget` may:
// all when they fit; else the most recent half of the budget (the episodes
// a reviewer of the current policy reads) and the rest spread evenly over
// the earlier ones (to see how behaviour changed).
std::vector<bool> SelectTranscripts(int64_t count, int64_t budget);

// The compact transcript of one trajectories.jsonl record: turns as
// {"role", "content"}, the reward with its components' details (rubric
// verdicts, verifier answers), termination, final env info without the
// reward spec, step rewards, ids and timings.
nlohmann::json CompactTranscript(const nlohmann::json& record,
                                 int64_t max_message_chars);

// Reads `path` twice (count, then digest). Errors name the file, the line
// and the field with a wrong type.
TrajectoryDigest ReadTrajectoryDigest(const std::string& path,
                                      const TrajectoryDigestOptions& options);

// {"count", "splits", "envs", "terminations", "components": [names],
//  "columns": {"step", "line", "split", "env", "term", "turns", "reward",
//  "transcript", "comp": [[...] per component]}, "transcripts": [strings]}.
nlohmann::json TrajectoryDigestJson(const TrajectoryDigest& digest,
                                    int significant_digits = 4);

}  // namespace clinrl::report
