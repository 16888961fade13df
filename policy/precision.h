// Compute precision of a forward pass and where a model lives. bf16 is mixed
// precision as torch.amp (and Hugging Face Trainer's bf16=True) does it: the
// parameters stay float32 (the master weights the optimizer updates), matrix
// products and attention run in bfloat16 on casts of them, and norms,
// residual sums, log-softmax and the loss stay float32.
#pragma once

#include <torch/types.h>

#include <string>

namespace clinrl::policy {

enum class Precision { kFp32, kBf16 };

// "fp32" or "bf16"; throws ConfigError naming `field` otherwise.
Precision ParsePrecision(const std::string& name, const std::string& field);
const char* PrecisionName(Precision precision);

// "cpu", "cuda" or "cuda:N". Plain "cuda" is the GPU of this rank of the
// node (core/local_rank.h), as the NCCL communicator picks it. A CUDA device
// this process cannot see (none at all, or N past the count) is a
// ConfigError naming `field`, raised at start rather than deep in a step.
torch::Device ParseDevice(const std::string& name, const std::string& field);

// Enables autocast to bfloat16 for `device`'s type while alive (no-op for
// kFp32), restoring the previous state on exit. Nested guards share one cast
// cache, so an outer guard around a generation loop casts each weight once.
class AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, Precision precision);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

}  // namespace clinrl::policy
