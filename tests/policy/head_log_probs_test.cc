// The chunked head against torch's own autograd over the whole logits:
// log_softmax(hidden @ W^T / T), gathered, and the entropy, with gradients
// of a loss that weighs both, for chunk sizes that do and do not divide the
// token count; bf16 against autocast's bf16 product.
#include "policy/head_log_probs.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clinrl::policy {
namespace {

struct Reference {
  torch::Tensor logprobs, entropy, grad_hidden, grad_weight;
};

// torch autograd over the full logits; the loss weighs log-probs by `a` and
// entropies by `b` (b undefined: no entropy term).
Reference TorchReference(const torch::Tensor& hidden,
                         const torch::Tensor& weight,
                         const torch::Tensor& targets, double temperature,
                         const torch::Tensor& a, const torch::Tensor& b) {
  const auto h = hidden.detach().clone().requires_grad_(true);
  const auto w = weight.detach().clone().requires_grad_(true);
  const auto log_p = torch::log_softmax(
      torch::matmul(h, w.t()).to(torch::kFloat) / temperature, -1);
  Reference r;
  r.logprobs = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  r.entropy = -(log_p.exp() * log_p).sum(-1);
  torch::Tensor loss = (r.logprobs * a).sum();
  if (b.defined()) loss = loss + (r.entropy * b).sum();
  loss.backward();
  r.grad_hidden = h.grad();
  r.grad_weight = w.grad();
  return r;
}

double RelErr(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kFloat) - want).abs().max().item<double>() /
         std::max(1e-12, want.abs().max().item<double>());
}

TEST(HeadLogProbsTest, MatchesAutogradOverTheWholeLogits) {
  auto gen = at::detail::createCPUGenerator(3);
  for (int64_t chunk : {0, 1, 4, 7, 100}) {
    for (bool entropy_term : {false, true}) {
      for (double temperature : {1.0, 0.6}) {
        const auto hidden = torch::randn({2, 7, 16}, gen);
        const auto weight = torch::randn({53, 16}, gen) * 0.5;
        const auto targets = torch::randint(0, 53, {2, 7}, gen);
        const auto a = torch::randn({2, 7}, gen);
        const auto b =
            entropy_term ? torch::randn({2, 7}, gen) : torch::Tensor();
        const Reference want =
            TorchReference(hidden, weight, targets, temperature, a, b);

        const auto h = hidden.clone().requires_grad_(true);
        const auto w = weight.clone().requires_grad_(true);
        HeadLogProbsOptions o;
        o.temperature = temperature;
        o.chunk_tokens = chunk;
        const HeadLogProbs got = ChunkedHeadLogProbs(h, w, targets, o);
        ASSERT_EQ(got.logprobs.sizes(), targets.sizes());
        torch::Tensor loss = (got.logprobs * a).sum();
        if (b.defined()) loss = loss + (got.entropy * b).sum();
        loss.backward();
        const std::string what = "chunk " + std::to_string(chunk) +
                                 " entropy " + std::to_string(entropy_term) +
                                 " T " + std::to_string(temperature);
        EXPECT_LT(RelErr(got.logprobs, want.logprobs), 1e-5) << what;
        EXPECT_LT(RelErr(got.entropy, want.entropy), 1e-5) << what;
        EXPECT_LT(RelErr(h.grad(), want.grad_hidden), 1e-5) << what;
        EXPECT_LT(RelErr(w.grad(), want.grad_weight), 1e-5) << what;
      }
    }
  }
}

TEST(HeadLogProbsTest, OnlyTheInputsThatNeedAGradientGetOne) {
  auto gen = at::detail::createCPUGenerator(4);
  const auto hidden = torch::randn({5, 8}, gen).requires_grad_(true);
  const auto weight = torch::randn({11, 8}, gen);  // frozen head
  const auto targets = torch::randint(0, 11, {5}, gen);
  HeadLogProbsOptions o;
  o.entropy = false;
  o.chunk_tokens = 2;
  const HeadLogProbs got = ChunkedHeadLogProbs(hidden, weight, targets, o);
  EXPECT_FALSE(got.entropy.defined());
  got.logprobs.sum().backward();
  EXPECT_TRUE(hidden.grad().defined());
  EXPECT_FALSE(weight.grad().defined());
  const Reference want = TorchReference(hidden, weight, targets, 1.0,
                                        torch::ones({5}), torch::Tensor());
  EXPECT_LT(RelErr(hidden.grad(), want.grad_hidden), 1e-5);
}

// bf16 runs the product in bfloat16, as autocast runs the head, and keeps
// the softmax statistics and the weight gradient's sum in float32.
TEST(HeadLogProbsTest, Bf16FollowsAutocastsProduct) {
  auto gen = at::detail::createCPUGenerator(6);
  const auto hidden = torch::randn({9, 32}, gen);
  const auto weight = torch::randn({70, 32}, gen) * 0.2;
  const auto targets = torch::randint(0, 70, {9}, gen);
  const Reference want =
      TorchReference(hidden.to(torch::kBFloat16).to(torch::kFloat),
                     weight.to(torch::kBFloat16).to(torch::kFloat), targets,
                     1.0, torch::ones({9}), torch::Tensor());
  const auto h = hidden.clone().requires_grad_(true);
  const auto w = weight.clone().requires_grad_(true);
  HeadLogProbsOptions o;
  o.precision = Precision::kBf16;
  o.chunk_tokens = 4;
  const HeadLogProbs got = ChunkedHeadLogProbs(h, w, targets, o);
  got.logprobs.sum().backward();
  EXPECT_EQ(w.grad().scalar_type(), torch::kFloat);
  EXPECT_LT(RelErr(got.logprobs, want.logprobs), 1e-2);
  EXPECT_LT(RelErr(h.grad(), want.grad_hidden), 2e-2);
  EXPECT_LT(RelErr(w.grad(), want.grad_weight), 2e-2);
}

TEST(HeadLogProbsTest, BadShapesNameTheField) {
  const auto w = torch::randn({11, 8});
  EXPECT_THROW(ChunkedHeadLogProbs(torch::randn({5, 7}), w,
                                   torch::zeros({5}, torch::kLong)),
               BadRequest);
  EXPECT_THROW(ChunkedHeadLogProbs(torch::randn({5, 8}), w,
                                   torch::zeros({4}, torch::kLong)),
               BadRequest);
  HeadLogProbsOptions o;
  o.chunk_tokens = -1;
  try {
    ChunkedHeadLogProbs(torch::randn({5, 8}), w,
                        torch::zeros({5}, torch::kLong), o);
    FAIL() << "no error";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("chunk_tokens: -1"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace clinrl::policy
