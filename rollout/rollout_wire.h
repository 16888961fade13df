// The rollout work protocol's messages (docs/design.md, "Rollout work
// protocol"), written and read in one place for both sides: the rollout
// worker (rollout_service.cc) and learner rank 0
// (trainer/remote_episode_source.cc). A field added to one side's message is
// then added to the other's, and the round-trip tests
// (tests/rollout/rollout_wire_test.cc) check every field.
//
//   {"op": "work", "worker": W}
//     -> {"ok": true, "op": "work", "group": {key, env, split, task_index,
//         options, seed}, "min_version": V, "version": L}
//     or {"ok": true, "op": "work", "stop": true}
//   {"op": "result", "worker": W, "key": K, "episodes": [trajectory...],
//    "stats": {seconds, generate_seconds, env_seconds, generated_tokens,
//              prompt_tokens, cached_prompt_tokens, rounds, episodes,
//              reward_seconds}}
//     -> {"ok": true, "op": "result", "accepted": bool, "reason": R}
//
// The third message, the heartbeat, is distributed::HeartbeatMessage
// (distributed/heartbeat.h): its sender lives in distributed/, below
// rollout/ in the layering rule.
//
// Readers take the path of the message ("request", "reply") so that an
// error names the field: "request.stats.rounds: expected an integer, got
// string "3"". Replies are checked with wire::CheckReply first, so an error
// reply throws the learner's own typed error.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/trajectory.h"
#include "rollout/rollout_worker.h"

namespace clinrl::rollout {

// {"op": "work", "worker": W}: the worker is ready for a task group.
struct WorkRequest {
  std::string worker;
};
nlohmann::json WorkRequestToJson(const WorkRequest& request);
WorkRequest WorkRequestFromJson(const nlohmann::json& j,
                                const std::string& path);

// One task group: group_size episodes of `task`, sampled from `seed`. The
// key names it in the result.
struct WorkGroup {
  std::string key;
  TaskRef task;
  uint64_t seed = 0;
};

// The answer to a work request: a group to play with weights of version
// >= min_version (the learner's own version is `version`, on its way), or
// `stop` when the run is over (then the other fields are not sent).
struct WorkReply {
  bool stop = false;
  std::string failure;  // with stop: why the learner's run failed
  WorkGroup group;
  int64_t min_version = 0;
  int64_t version = 0;
};
nlohmann::json WorkReplyToJson(const WorkReply& reply);
WorkReply WorkReplyFromJson(const nlohmann::json& j, const std::string& path);

// The played group, scored, with the worker's timings and token counts.
// `stats.seconds` is the worker's wall time for the group; reward_seconds
// travels inside "stats" as well.
struct ResultRequest {
  std::string worker;
  std::string key;
  std::vector<Trajectory> episodes;
  RolloutStats stats;
  double reward_seconds = 0;
};
nlohmann::json ResultRequestToJson(const ResultRequest& request);
// A stats field that is absent reads as 0 (they are metrics: a group is not
// played again for a missing one); a mistyped one is refused, named. An
// episode that is not a trajectory record is refused naming its index
// ("request.episodes[1]: trajectory.turns: expected an array, ...").
ResultRequest ResultRequestFromJson(const nlohmann::json& j,
                                    const std::string& path);

// {seconds, generate_seconds, env_seconds, generated_tokens, prompt_tokens,
//  cached_prompt_tokens, rounds, episodes}
nlohmann::json RolloutStatsToJson(const RolloutStats& stats);
RolloutStats RolloutStatsFromJson(const nlohmann::json& j,
                                  const std::string& path);

// Whether the learner uses the group; `reason` when it does not ("stale":
// sampled more than max_policy_lag versions back, the group is played again;
// "no such outstanding group": finished by another worker or of an earlier
// step).
struct ResultReply {
  bool accepted = false;
  std::string reason;
};
nlohmann::json ResultReplyToJson(const ResultReply& reply);
ResultReply ResultReplyFromJson(const nlohmann::json& j,
                                const std::string& path);

}  // namespace clinrl::rollout
