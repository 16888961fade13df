// The matrix-product rate of this machine (float32 on the CPU, bfloat16 on
// a GPU for MFU), measured in the same process as a benchmark, so model
// throughput can be reported as a fraction of it. On the CPU in float32 it
// is the better of LibTorch's product and clinrl's packed one
// (policy/packed_linear.h) where this CPU runs it: clinrl's inference
// products run packed, and a fraction of the library's rate alone would
// overstate how near the machine's limit they are.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace clinrl::bench {

struct GemmPeak {
  double gflops = 0;  // the better of the two below
  double library_gflops = 0;  // torch::mm's best rate over the repeats
  double packed_gflops = 0;   // the packed product's; 0 where not run
  int64_t threads = 0;
  int64_t size = 0;  // n of the n x n x n product
  int64_t repeats = 0;
  std::string device = "cpu";
  std::string dtype = "float32";

  nlohmann::json ToJson() const;
};

// Times torch::mm on n x n matrices of `dtype` on `device` with `threads`
// intra-op threads (0 = all cores; the count stays set afterwards) until
// `min_seconds` have passed, after one warm-up product; then, float32 on a
// CPU with AVX-512, the packed product of the same matrices as long.
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
