// The memory bandwidth of this machine through LibTorch, measured in the same
// process as a benchmark: batch-1 decoding reads every weight once per token,
// so weight bytes / this bandwidth bounds its tokens/s.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace clinrl::bench {

struct CopyBandwidth {
  double gbps = 0;  // best (bytes read + bytes written) / second / 1e9
  int64_t buffer_bytes = 0;
  int64_t repeats = 0;
  std::string device = "cpu";

  nlohmann::json ToJson() const;
};

// Times copies between two float32 buffers of `bytes` on `device` (with the
// intra-op threads already set) until `min_seconds` have passed, after one
// warm-up copy. The buffers are far larger than any cache.
CopyBandwidth MeasureCopyBandwidth(const torch::Device& device,
                                   int64_t bytes = int64_t{256} << 20,
                                   double min_seconds = 1.0);

}  // namespace clinrl::bench
