// The reward protocol's messages (docs/design.md): requests
//   {"op": "score", "trajectory": {...}}
//   {"op": "score_group", "trajectories": [{...}, ...]}
//   {"op": "health"}  {"op": "plugins"}
// and score replies
//   {"ok": true, "total": float, "components": {name: {"score", "weight",
//    "details"}}, "flagged": bool, "errors": [{"component", "code",
//    "message"}]}
// (score_group: {"ok": true, "results": [<score reply body>, ...]}).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/trajectory.h"

namespace clinrl::rewards {

// The score request for one trajectory, as text: the same JSON as
// {"op": "score", "trajectory": ToJson(t)}, written straight from the struct.
// Building the DOM first costs more than scoring the trajectory (token ids,
// log-probs and a whole rubric per request), and the client pays it for every
// request it sends.
std::string EncodeScoreRequest(const Trajectory& trajectory);
void AppendTrajectoryJson(const Trajectory& trajectory, std::string* out);

// {"total", "components", "flagged", "errors"}
nlohmann::json RewardResultToJson(const RewardResult& result);
// Errors name the path ("reply.components.dx.score: expected a number").
RewardResult RewardResultFromJson(const nlohmann::json& j,
                                  const std::string& path);

}  // namespace clinrl::rewards
