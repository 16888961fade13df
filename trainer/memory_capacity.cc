#include "trainer/memory_capacity.h"

#include <c10/core/CachingDeviceAllocator.h>
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "policy/precision.h"

namespace clinrl::trainer {

int64_t HostMemoryBytes() {
  const std::string path = "/proc/meminfo";
  std::ifstream in(path);
  if (!in) throw IoError(fmt::format("{}: cannot open it", path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemTotal:", 0) != 0) continue;
    std::istringstream fields(line.substr(9));
    int64_t kib = 0;
    std::string unit;
    if (fields >> kib >> unit && unit == "kB" && kib > 0) return kib * 1024;
    throw IoError(fmt::format(
        "{}: MemTotal line '{}': expected a positive count of kB", path, line));
  }
  throw IoError(fmt::format("{}: no MemTotal line", path));
}

int64_t DeviceMemoryBytes(const std::string& device, const std::string& field) {
  const torch::Device parsed = policy::ParseDevice(device, field);
  if (!parsed.is_cuda()) return HostMemoryBytes();
  // Through the device-generic allocator interface, so this file needs no
  // CUDA headers; the CUDA allocator answers with cudaMemGetInfo's total.
  const auto [free_bytes, total_bytes] =
      c10::getDeviceAllocator(c10::DeviceType::CUDA)
          ->getMemoryInfo(parsed.index());
  (void)free_bytes;
  return static_cast<int64_t>(total_bytes);
}

}  // namespace clinrl::trainer
