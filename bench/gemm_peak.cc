#include "bench/gemm_peak.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "bench/device_memory.h"
#include "core/error.h"
#include "policy/packed_linear.h"

namespace clinrl::bench {

nlohmann::json GemmPeak::ToJson() const {
  return {{"gflops", gflops},
          {"library_gflops", library_gflops},
          {"packed_gflops", packed_gflops},
          {"threads", threads},
          {"size", size},
          {"repeats", repeats},
          {"device", device},
          {"dtype", dtype}};
}

GemmPeak MeasureGemmPeak(int64_t threads, int64_t n, double min_seconds,
                         const torch::Device& device, torch::ScalarType dtype) {
  if (threads < 0 || n < 1) {
    throw BadRequest(fmt::format(
        "gemm peak: threads {} (expected >= 0) and n {} (expected >= 1)",
        threads, n));
  }
  if (threads == 0)
    threads = std::max<long>(1, ::sysconf(_SC_NPROCESSORS_ONLN));
  at::set_num_threads(static_cast<int>(threads));
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(1234);
  const torch::Tensor a =
      torch::randn({n, n}, gen, torch::kFloat).to(device, dtype);
  const torch::Tensor b =
      torch::randn({n, n}, gen, torch::kFloat).to(device, dtype);
  torch::Tensor c = torch::mm(a, b);  // warm-up: thread pool, BLAS buffers
  SynchronizeDevice(device);
  GemmPeak peak;
  peak.threads = at::get_num_threads();
  peak.size = n;
  peak.device = device.str();
  peak.dtype = c10::toString(dtype);
  // A GPU queues products asynchronously: time a burst, then wait for it.
  const int burst = device.is_cuda() ? 10 : 1;
  const double flops = 2.0 * n * n * n * burst;
  // Best rate of `product` over repeats lasting min_seconds (at least 3).
  const auto best_rate = [&](const auto& product) {
    double best = 0;
    int64_t repeats = 0;
    const auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    while (elapsed < min_seconds || repeats < 3) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < burst; ++i) product();
      SynchronizeDevice(device);
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      best = std::max(best, flops / s / 1e9);
      ++repeats;
      elapsed = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    }
    peak.repeats += repeats;
    return best;
  };
  peak.library_gflops = best_rate([&] { torch::mm_out(c, a, b); });
  if (device.is_cpu() && dtype == torch::kFloat &&
      policy::PackedLinearAvailable()) {
    // x W^T with W = b^T: the same n^3 multiply-adds.
    const policy::PackedLinearWeight packed(b.t(), torch::Tensor());
    packed.Apply(a);  // warm-up
    peak.packed_gflops = best_rate([&] { c = packed.Apply(a); });
  }
  peak.gflops = std::max(peak.library_gflops, peak.packed_gflops);
  return peak;
}

GemmPeak MeasureModelPeak(int64_t threads, const torch::Device& device,
                          bool bf16, bool quick) {
  if (!device.is_cuda()) {
    return MeasureGemmPeak(threads, quick ? 256 : 1024, quick ? 0.2 : 1.0);
  }
  return MeasureGemmPeak(threads, 8192, 2.0, device,
                         bf16 ? torch::kBFloat16 : torch::kFloat32);
}

}  // namespace clinrl::bench
