// Seconds on the monotonic clock, for durations and throughput figures.
#pragma once

#include <chrono>

namespace clinrl {

inline double MonotonicSeconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace clinrl
