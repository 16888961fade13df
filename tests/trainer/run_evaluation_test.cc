#include "trainer/run_evaluation.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace clinrl::trainer {
namespace {

// Binomial coefficients by Pascal's rule, exact in 64-bit integers for the
// sizes below: the definition 1 - C(n - c, k) / C(n, k) that PassAtK's
// product form must equal.
std::vector<std::vector<double>> Binomials(int n) {
  std::vector<std::vector<double>> c(n + 1, std::vector<double>(n + 1, 0));
  for (int i = 0; i <= n; ++i) {
    c[i][0] = 1;
    for (int j = 1; j <= i; ++j) c[i][j] = c[i - 1][j - 1] + c[i - 1][j];
  }
  return c;
}

TEST(PassAtKTest, EqualsOneMinusTheRatioOfBinomials) {
  const auto binom = Binomials(20);
  for (int n = 1; n <= 20; ++n) {
    for (int c = 0; c <= n; ++c) {
      for (int k = 1; k <= n; ++k) {
        const double want = 1.0 - binom[n - c][k] / binom[n][k];
        EXPECT_NEAR(PassAtK(n, c, k), want, 1e-12)
            << "n=" << n << " c=" << c << " k=" << k;
      }
    }
  }
  // pass@1 is the fraction correct; no correct sample, no pass; k samples
  // that cannot all be wrong always pass.
  EXPECT_DOUBLE_EQ(PassAtK(8, 3, 1), 3.0 / 8.0);
  EXPECT_DOUBLE_EQ(PassAtK(8, 0, 8), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(8, 5, 4), 1.0);
}

TEST(PassAtKTest, RefusesImpossibleCounts) {
  EXPECT_THROW(PassAtK(4, 5, 1), InternalError);
  EXPECT_THROW(PassAtK(4, 1, 5), InternalError);
  EXPECT_THROW(PassAtK(0, 0, 1), InternalError);
}

}  // namespace
}  // namespace clinrl::trainer
