// The few-row product against torch::linear, for every row count it takes,
// widths that are and are not multiples of the vector width, with and
// without bias, and the shapes it must leave to the BLAS product.
#include "policy/skinny_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace clinrl::policy {
namespace {

TEST(SkinnyLinearTest, EqualsTorchLinear) {
  auto gen = at::detail::createCPUGenerator(5);
  for (int64_t in : {37, 64, 512}) {
    for (int64_t rows = 1; rows <= kSkinnyLinearMaxRows; ++rows) {
      const auto x = torch::randn({rows, in}, gen);
      const auto w = torch::randn({301, in}, gen);
      const auto b = torch::randn({301}, gen);
      ASSERT_TRUE(SkinnyLinearApplies(x, w));
      const auto want = torch::linear(x, w, b);
      const auto got = SkinnyLinear(x, w, b);
      EXPECT_LT((got - want).abs().max().item<double>(),
                1e-5 * want.abs().max().item<double>())
          << in << " " << rows;
      EXPECT_TRUE(torch::allclose(SkinnyLinear(x, w, {}), torch::linear(x, w),
                                  1e-5,
                                  1e-5 * want.abs().max().item<double>()));
    }
  }
}

TEST(SkinnyLinearTest, LeavesOtherShapesToTheBlas) {
  const auto w = torch::randn({16, 8});
  EXPECT_FALSE(SkinnyLinearApplies(torch::randn({9, 8}), w));
  EXPECT_FALSE(SkinnyLinearApplies(torch::randn({1, 1, 8}), w));
  EXPECT_FALSE(SkinnyLinearApplies(torch::randn({1, 8}).to(torch::kBFloat16),
                                   w.to(torch::kBFloat16)));
  EXPECT_FALSE(SkinnyLinearApplies(torch::randn({1, 8}), w.t()));
}

}  // namespace
}  // namespace clinrl::policy
