// The matrix-product rate of this machine through LibTorch (float32 on the
// CPU, bfloat16 on a GPU for MFU), measured in the same process as a
// benchmark, so model throughput can be reported as a fraction of it.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace clinrl::bench {

struct GemmPeak {
  double gflops = 0;  // best rate over the timed repeats
  int64_t threads = 0;
  int64_t size = 0;  // n of the n x n x n product
  int64_t repeats = 0;
  std::string device = "cpu";
  std::string dtype = "float32";

  nlohmann::json ToJson() const;
};

// Times torch::mm on n x n matrices of `dtype` on `device` with `threads`
// intra-op threads (0 = all cores; the count stays set afterwards) until
// `min_seconds` have passed, after one warm-up product.
GemmPeak MeasureGemmPeak(int64_t threads, int64_t n = 1024,
                         double min_seconds = 1.0,
                         const torch::Device& device = torch::kCPU,
                         torch::ScalarType dtype = torch::kFloat32);

// The peak a model bench on `device` is measured against: float32 on the
// CPU (smaller and shorter when `quick`), on a GPU 8192^3 products in
// bfloat16 when `bf16` (the MFU denominator), else float32.
GemmPeak MeasureModelPeak(int64_t threads, const torch::Device& device,
                          bool bf16, bool quick);

}  // namespace clinrl::bench
