// FusedLinear: parts run as one product equal the parts run alone, for the
// row counts of decoding and of prefill (parts with and without a bias),
// and the prepared weight follows every change of a source (an in-place
// update, an adapter's, a dtype).
#include "policy/fused_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace clinrl::policy {
namespace {

torch::nn::Linear RandomLinear(int64_t in, int64_t out, bool bias) {
  torch::nn::Linear layer(torch::nn::LinearOptions(in, out).bias(bias));
  torch::NoGradGuard no_grad;
  layer->weight.normal_();
  if (bias) layer->bias.normal_();
  return layer;
}

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(FusedLinearTest, EqualsThePartsRunAlone) {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  std::vector<torch::nn::Linear> parts = {RandomLinear(40, 24, true),
                                          RandomLinear(40, 8, false),
                                          RandomLinear(40, 33, true)};
  FusedLinear fused;
  for (int64_t rows : {1, 3, 8, 32, 300}) {
    const auto x = torch::randn({rows, 40});
    const auto want = torch::cat({parts[0](x), parts[1](x), parts[2](x)}, 1);
    const auto got = fused.Apply(parts, {{}, {}, {}}, x, torch::kFloat);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT(MaxDiff(got, want), 1e-4) << rows << " rows";
  }
}

TEST(FusedLinearTest, FollowsInPlaceUpdatesOfItsSources) {
  torch::manual_seed(4);
  torch::NoGradGuard no_grad;
  std::vector<torch::nn::Linear> parts = {RandomLinear(16, 8, false)};
  FusedLinear fused;
  const auto x = torch::randn({4, 16});
  EXPECT_LT(MaxDiff(fused.Apply(parts, {{}}, x, torch::kFloat), parts[0](x)),
            1e-5);
  parts[0]->weight.mul_(-2);  // an optimizer step, in place
  EXPECT_LT(MaxDiff(fused.Apply(parts, {{}}, x, torch::kFloat), parts[0](x)),
            1e-5);
  // A bare weight, as the tied output head.
  FusedLinear head;
  const auto w = torch::randn({50, 16});
  EXPECT_LT(MaxDiff(head.Apply(w, x, torch::kFloat), torch::linear(x, w)),
            1e-5);
  w.add_(1);
  EXPECT_LT(MaxDiff(head.Apply(w, x, torch::kFloat), torch::linear(x, w)),
            1e-5);
  // A dtype change prepares the weight again, in that dtype.
  const auto bf16 = head.Apply(w, x, torch::kBFloat16);
  EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);
  EXPECT_LT(MaxDiff(bf16.to(torch::kFloat), torch::linear(x, w)),
            0.05 * torch::linear(x, w).abs().max().item<double>());
}

TEST(FusedLinearTest, AddsEachPartsAdapter) {
  torch::manual_seed(5);
  std::vector<torch::nn::Linear> parts = {RandomLinear(12, 6, true),
                                          RandomLinear(12, 10, false)};
  LoraOptions options;
  options.rank = 2;
  options.alpha = 4;
  std::vector<LoraAdapter> adapters = {AttachLora(parts[0], options, 1),
                                       LoraAdapter()};
  torch::NoGradGuard no_grad;
  adapters[0].b->weight.normal_();  // B starts at zero: make it count
  FusedLinear fused;
  const auto x = torch::randn({5, 12});
  const auto want =
      torch::cat({LoraProject(parts[0], adapters[0], x), parts[1](x)}, 1);
  EXPECT_LT(MaxDiff(fused.Apply(parts, adapters, x, torch::kFloat), want),
            1e-4);
  adapters[0].a->weight.mul_(3);  // the adapter trained
  const auto changed =
      torch::cat({LoraProject(parts[0], adapters[0], x), parts[1](x)}, 1);
  EXPECT_GT(MaxDiff(changed, want), 1e-2);
  EXPECT_LT(MaxDiff(fused.Apply(parts, adapters, x, torch::kFloat), changed),
            1e-4);
}

}  // namespace
}  // namespace clinrl::policy
