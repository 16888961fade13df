#include "policy/precision.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include "core/error.h"
#include "core/local_rank.h"

namespace clinrl::policy {

Precision ParsePrecision(const std::string& name, const std::string& field) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  throw ConfigError(
      fmt::format("{}: got '{}', expected one of: fp32, bf16", field, name));
}

const char* PrecisionName(Precision precision) {
  return precision == Precision::kBf16 ? "bf16" : "fp32";
}

torch::Device ParseDevice(const std::string& name, const std::string& field) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  int index = -1;
  if (name == "cuda") {
    index = 0;  // resolved below, once the count is known
  } else if (name.rfind("cuda:", 0) == 0 && name.size() > 5 &&
             name.find_first_not_of("0123456789", 5) == std::string::npos &&
             name.size() <= 8) {
    index = std::stoi(name.substr(5));
  } else {
    throw ConfigError(fmt::format(
        "{}: got '{}', expected cpu, cuda or cuda:N (N a GPU index)", field,
        name));
  }
  const int64_t count =
      torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  if (count == 0) {
    throw ConfigError(fmt::format(
        "{}: got '{}', but this process sees no CUDA device (no GPU, no "
        "driver, or CUDA_VISIBLE_DEVICES hides them); use \"cpu\"",
        field, name));
  }
  if (name == "cuda") index = static_cast<int>(NodeLocalRank() % count);
  if (index >= count) {
    throw ConfigError(fmt::format(
        "{}: got '{}', but this process sees {} GPU(s), numbered 0 to {}",
        field, name, count, count - 1));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

AutocastGuard::AutocastGuard(const torch::Device& device, Precision precision) {
  if (precision == Precision::kFp32) return;
  active_ = true;
  type_ = device.type();
  previous_enabled_ = at::autocast::is_autocast_enabled(type_);
  previous_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // The cast cache lives as long as the outermost guard, as in torch.amp.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, previous_enabled_);
  at::autocast::set_autocast_dtype(type_, previous_dtype_);
}

}  // namespace clinrl::policy
