#include "bench/device_memory.h"

#include <sys/resource.h>
#include <torch/cuda.h>

#ifdef CLINRL_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "core/error.h"

namespace clinrl::bench {

void SynchronizeDevice(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

void ResetPeakMemory(const torch::Device& device) {
#ifdef CLINRL_WITH_CUDA
  if (device.is_cuda()) {
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
  }
#else
  (void)device;
#endif
}

int64_t PeakMemoryBytes(const torch::Device& device) {
#ifdef CLINRL_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    // Index 0 is the aggregate over small and large pools.
    return stats.allocated_bytes[0].peak;
  }
#endif
  CLINRL_CHECK(!device.is_cuda(), "peak memory of {}: built without CUDA",
               device.str());
  struct rusage usage {};
  CLINRL_CHECK_ERRNO(::getrusage(RUSAGE_SELF, &usage) == 0, "getrusage",
                     "reading the peak memory");
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

}  // namespace clinrl::bench
