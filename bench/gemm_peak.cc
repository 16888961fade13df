#include "bench/gemm_peak.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace clinrl::bench {

nlohmann::json GemmPeak::ToJson() const {
  return {{"gflops", gflops},
          {"threads", threads},
          {"size", size},
          {"repeats", repeats}};
}

GemmPeak MeasureGemmPeak(int64_t threads, int64_t n, double min_seconds) {
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
  const torch::Tensor a = torch::randn({n, n}, gen, torch::kFloat);
  const torch::Tensor b = torch::randn({n, n}, gen, torch::kFloat);
  torch::Tensor c = torch::mm(a, b);  // warm-up: thread pool, BLAS buffers
  GemmPeak peak;
  peak.threads = at::get_num_threads();
  peak.size = n;
  const double flops = 2.0 * n * n * n;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < min_seconds || peak.repeats < 3) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    peak.gflops = std::max(peak.gflops, flops / s / 1e9);
    ++peak.repeats;
    elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
  }
  return peak;
}

}  // namespace clinrl::bench
