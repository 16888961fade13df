// The reward protocol's messages (DESIGN.md): requests
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

// {"total", "components", "flagged", "errors"}
nlohmann::json RewardResultToJson(const RewardResult& result);
// Errors name the path ("reply.components.dx.score: expected a number").
RewardResult RewardResultFromJson(const nlohmann::json& j,
                                  const std::string& path);

}  // namespace clinrl::rewards
