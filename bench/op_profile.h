// Where a piece of work spends its time, op by op: runs it under LibTorch's
// profiler and sums each op's self time (its time minus that of the ops it
// called), the table a note's "profile first" asks for.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace clinrl::bench {

struct OpProfile {
  double wall_seconds = 0;     // the work, profiler on
  double op_self_seconds = 0;  // summed self time of every op
  // Top ops by self time: {"name", "calls", "self_ms", "share"}, share of
  // wall time.
  nlohmann::json top = nlohmann::json::array();
  nlohmann::json ToJson() const;
  // A table, one op per line.
  std::string Table() const;
};

// Runs `work` once under the profiler; keeps the `top_count` costliest ops.
OpProfile ProfileOps(const std::function<void()>& work, int top_count = 15);

}  // namespace clinrl::bench
