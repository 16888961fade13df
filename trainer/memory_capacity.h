// How many bytes one "device" of a run has, for the memory planner
// (trainer/memory_plan.h): a GPU's total memory, or on the CPU the host's
// RAM (every process of the node shares it).
#pragma once

#include <cstdint>
#include <string>

namespace clinrl::trainer {

// MemTotal of /proc/meminfo in bytes; throws IoError naming the file when it
// cannot be read or has no MemTotal line.
int64_t HostMemoryBytes();

// Total memory of `device` ("cpu", "cuda", "cuda:N"): HostMemoryBytes() for
// the CPU, the GPU's total as CUDA reports it otherwise. A device this
// process cannot see is a ConfigError naming `field` (policy::ParseDevice).
int64_t DeviceMemoryBytes(const std::string& device, const std::string& field);

}  // namespace clinrl::trainer
