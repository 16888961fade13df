// The packed product against torch::linear: row counts on both sides of the
// 8-row tile and the 256-row block, output widths on both sides of the
// 32-wide panel, input widths that are not multiples of anything, with and
// without bias.
#include "policy/packed_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clinrl::policy {
namespace {

// The kernel needs AVX-512F. A CPU without it never runs the kernel
// (callers keep the library's product, tested elsewhere), so these tests
// say so and skip there.
#define CLINRL_SKIP_WITHOUT_AVX512()                                   \
  if (!PackedLinearAvailable()) {                                      \
    GTEST_SKIP() << "this CPU has no AVX-512F; the packed product is " \
                    "not used on it";                                  \
  }

TEST(PackedLinearTest, EqualsTorchLinear) {
  CLINRL_SKIP_WITHOUT_AVX512();
  auto gen = at::detail::createCPUGenerator(11);
  for (int64_t in : {1, 37, 512}) {
    for (int64_t out : {5, 32, 301}) {
      const auto w = torch::randn({out, in}, gen);
      const auto b = torch::randn({out}, gen);
      const PackedLinearWeight with_bias(w, b), without_bias(w, {});
      EXPECT_EQ(with_bias.out_features(), out);
      EXPECT_EQ(with_bias.in_features(), in);
      for (int64_t rows : {1, 2, 7, 8, 9, 17, 32, 255, 256, 257, 520}) {
        const auto x = torch::randn({rows, in}, gen);
        const auto want = torch::linear(x, w, b);
        const double scale = want.abs().max().item<double>();
        const auto got = with_bias.Apply(x);
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_LT((got - want).abs().max().item<double>(), 1e-5 * scale)
            << "in " << in << " out " << out << " rows " << rows;
        EXPECT_LT((without_bias.Apply(x) - torch::linear(x, w))
                      .abs()
                      .max()
                      .item<double>(),
                  1e-5 * scale)
            << "in " << in << " out " << out << " rows " << rows;
      }
    }
  }
}

TEST(PackedLinearTest, TakesStridedRowsAndOtherFloatWeights) {
  CLINRL_SKIP_WITHOUT_AVX512();
  auto gen = at::detail::createCPUGenerator(12);
  const auto w = torch::randn({64, 48}, gen);
  // A bfloat16 weight is packed as float32.
  const PackedLinearWeight packed(w.to(torch::kBFloat16), {});
  const auto x = torch::randn({48, 10}, gen).t();  // not contiguous
  const auto want = torch::linear(x, w.to(torch::kBFloat16).to(torch::kFloat));
  EXPECT_TRUE(torch::allclose(packed.Apply(x), want, 1e-5, 1e-4));
  EXPECT_EQ(packed.bytes(), 64 * 48 * 4);
  EXPECT_EQ(packed.Apply(torch::zeros({0, 48})).sizes(),
            (std::vector<int64_t>{0, 64}));
}

TEST(PackedLinearTest, RefusesWhatItCannotRun) {
  CLINRL_SKIP_WITHOUT_AVX512();
  const PackedLinearWeight packed(torch::randn({16, 8}), torch::randn({16}));
  EXPECT_THROW(packed.Apply(torch::randn({2, 9})), Error);
  EXPECT_THROW(packed.Apply(torch::randn({2, 8}).to(torch::kDouble)), Error);
  EXPECT_THROW(packed.Apply(torch::randn({1, 2, 8})), Error);
  EXPECT_THROW(PackedLinearWeight().Apply(torch::randn({2, 8})), Error);
  EXPECT_THROW(PackedLinearWeight(torch::randn({16, 8}), torch::randn({15})),
               Error);
  EXPECT_THROW(PackedLinearWeight(torch::randn({16}), {}), Error);
}

}  // namespace
}  // namespace clinrl::policy
