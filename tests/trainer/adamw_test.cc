#include "trainer/adamw.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "tests/trainer/reference_runner.h"
#include "trainer/lr_schedule.h"

namespace clinrl::trainer {
namespace {

using nlohmann::json;

json ToJson(const torch::Tensor& t) {
  const torch::Tensor flat = t.contiguous().to(torch::kFloat64).view({-1});
  std::vector<double> v(flat.data_ptr<double>(),
                        flat.data_ptr<double>() + flat.numel());
  return v;
}

TEST(AdamWTest, MatchesTorchOptimAdamWWithClipping) {
  torch::manual_seed(11);
  std::vector<torch::Tensor> init = {torch::randn({5}, torch::kFloat64),
                                     torch::randn({3}, torch::kFloat64)};
  json spec = {{"beta1", 0.9},
               {"beta2", 0.95},
               {"eps", 1e-8},
               {"weight_decay", 0.1},
               {"max_norm", 1.0}};
  spec["params"] = {ToJson(init[0]), ToJson(init[1])};
  std::vector<torch::Tensor> params = {init[0].clone(), init[1].clone()};
  AdamW opt({{"a", params[0]}, {"b", params[1]}},
            {0.9, 0.95, 1e-8, /*weight_decay=*/0.1});
  const LrSchedule schedule{1e-2, 2, 6, 0.1};
  spec["steps"] = json::array();
  std::vector<double> norms;
  for (int step = 0; step < 6; ++step) {
    // Alternate large and small gradients so clipping is on for some steps.
    const double scale = step % 2 ? 0.1 : 3.0;
    const torch::Tensor g0 = torch::randn({5}, torch::kFloat64) * scale;
    const torch::Tensor g1 = torch::randn({3}, torch::kFloat64) * scale;
    spec["steps"].push_back(
        {{"grads", {ToJson(g0), ToJson(g1)}}, {"lr", schedule.At(step)}});
    params[0].mutable_grad() = g0.clone();
    params[1].mutable_grad() = g1.clone();
    norms.push_back(ClipGradNorm(params, 1.0));
    opt.Step(schedule.At(step));
  }
  const json expected = clinrl::testing::RunPythonReference(
      "tests/trainer/reference/adamw_reference.py", spec);
  for (size_t i = 0; i < norms.size(); ++i) {
    EXPECT_NEAR(norms[i], expected["norms"][i].get<double>(), 1e-10);
  }
  EXPECT_GT(norms[0], 1.0);  // clipping was exercised
  for (int p = 0; p < 2; ++p) {
    const auto want = expected["params"][p].get<std::vector<double>>();
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_NEAR(params[p][k].item<double>(), want[k], 1e-10) << p << "," << k;
    }
  }
  EXPECT_EQ(opt.step(), 6);
}

TEST(AdamWTest, StateRoundTripResumesExactly) {
  torch::manual_seed(5);
  torch::Tensor a = torch::randn({4});
  torch::Tensor b = a.clone();
  AdamW first({{"w", a}}, {});
  for (int i = 0; i < 3; ++i) {
    a.mutable_grad() = torch::ones({4}) * (i + 1);
    first.Step(0.01);
  }
  // A second optimizer loaded from the first's state continues identically.
  b.copy_(a);
  AdamW second({{"w", b}}, {});
  second.LoadState(first.StateTensors(), first.step());
  a.mutable_grad() = torch::full({4}, 0.5);
  b.mutable_grad() = torch::full({4}, 0.5);
  first.Step(0.01);
  second.Step(0.01);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(first.StateBytes(), 2 * 4 * 4);
}

TEST(AdamWTest, LoadStateNamesMissingAndMisShapedTensors) {
  torch::Tensor w = torch::zeros({2, 3});
  AdamW opt({{"layer.weight", w}}, {});
  try {
    opt.LoadState({}, 1);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("layer.weight.exp_avg"),
              std::string::npos);
  }
  std::map<std::string, torch::Tensor> bad = {
      {"layer.weight.exp_avg", torch::zeros({3, 2})},
      {"layer.weight.exp_avg_sq", torch::zeros({2, 3})}};
  EXPECT_THROW(opt.LoadState(bad, 1), BadRequest);
}

TEST(LrScheduleTest, WarmupThenCosineToFloor) {
  const LrSchedule s{1.0, 4, 14, 0.1};
  EXPECT_DOUBLE_EQ(s.At(0), 0.25);
  EXPECT_DOUBLE_EQ(s.At(3), 1.0);
  EXPECT_DOUBLE_EQ(s.At(4), 1.0);                // cosine starts at peak
  EXPECT_NEAR(s.At(9), 0.1 + 0.9 * 0.5, 1e-12);  // halfway
  EXPECT_NEAR(s.At(14), 0.1, 1e-12);             // floor
  EXPECT_NEAR(s.At(100), 0.1, 1e-12);            // stays there
  const LrSchedule no_warmup{2.0, 0, 10, 0.0};
  EXPECT_DOUBLE_EQ(no_warmup.At(0), 2.0);
  EXPECT_NEAR(no_warmup.At(5), 1.0, 1e-12);
}

}  // namespace
}  // namespace clinrl::trainer
