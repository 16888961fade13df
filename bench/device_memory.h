// Peak memory and synchronisation of the device a benchmark runs on: the
// process's max resident memory on the CPU, the CUDA caching allocator's peak
// allocated bytes on a GPU (what torch.cuda.max_memory_allocated reports).
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace clinrl::bench {

// Waits for the work queued on `device` (no-op on the CPU), so that a timer
// read afterwards covers it.
void SynchronizeDevice(const torch::Device& device);

// Starts a new peak on a GPU; the CPU's max RSS cannot be reset, so CPU
// comparisons run one setting per process.
void ResetPeakMemory(const torch::Device& device);
int64_t PeakMemoryBytes(const torch::Device& device);

}  // namespace clinrl::bench
