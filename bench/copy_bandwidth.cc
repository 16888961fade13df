#include "bench/copy_bandwidth.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "bench/device_memory.h"
#include "core/error.h"

namespace clinrl::bench {

nlohmann::json CopyBandwidth::ToJson() const {
  return {{"gbps", gbps},
          {"buffer_bytes", buffer_bytes},
          {"repeats", repeats},
          {"device", device}};
}

CopyBandwidth MeasureCopyBandwidth(const torch::Device& device, int64_t bytes,
                                   double min_seconds) {
  if (bytes < 4) {
    throw BadRequest(
        fmt::format("copy bandwidth: {} bytes, expected >= 4", bytes));
  }
  torch::NoGradGuard no_grad;
  const auto options =
      torch::TensorOptions().dtype(torch::kFloat).device(device);
  const torch::Tensor src = torch::ones({bytes / 4}, options);
  torch::Tensor dst = torch::empty({bytes / 4}, options);
  dst.copy_(src);  // warm-up: pages touched, threads started
  SynchronizeDevice(device);
  CopyBandwidth bw;
  bw.buffer_bytes = src.numel() * 4;
  bw.device = device.str();
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < min_seconds || bw.repeats < 3) {
    const auto t0 = std::chrono::steady_clock::now();
    dst.copy_(src);
    SynchronizeDevice(device);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    bw.gbps =
        std::max(bw.gbps, 2.0 * static_cast<double>(bw.buffer_bytes) / s / 1e9);
    ++bw.repeats;
    elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
  }
  return bw;
}

}  // namespace clinrl::bench
