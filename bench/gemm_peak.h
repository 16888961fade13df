// The float32 matrix-product rate of this machine through LibTorch, measured
// in the same process as a benchmark, so model throughput can be reported
// as a fraction of it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

namespace clinrl::bench {

struct GemmPeak {
  double gflops = 0;  // best rate over the timed repeats
  int64_t threads = 0;
  int64_t size = 0;  // n of the n x n x n product
  int64_t repeats = 0;

  nlohmann::json ToJson() const;
};

// Times torch::mm on n x n float32 matrices with `threads` intra-op threads
// (0 = all cores; the count stays set afterwards) until `min_seconds` have
// passed, after one warm-up product.
GemmPeak MeasureGemmPeak(int64_t threads, int64_t n = 1024,
                         double min_seconds = 1.0);

}  // namespace clinrl::bench
