// Sampling: exact top-k / top-p support on crafted logits, seeded streams
// that repeat, log-probs of the tempered distribution, and frequencies that
// follow the probabilities.
#include "policy/sampler.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "core/error.h"

namespace clinrl::policy {
namespace {

std::set<int64_t> Support(const torch::Tensor& filtered_row) {
  std::set<int64_t> s;
  for (int64_t v = 0; v < filtered_row.size(0); ++v) {
    if (std::isfinite(filtered_row[v].item<float>())) s.insert(v);
  }
  return s;
}

// Logits whose softmax is exactly `probs` up to float rounding.
torch::Tensor LogitsOf(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return torch::tensor(l).view({1, (int64_t)l.size()});
}

TEST(SamplerTest, TopKKeepsTheKLargestAndBreaksTiesByLowerId) {
  const auto logits =
      torch::tensor({0.1f, 3.0f, -2.0f, 2.5f, 2.9f, 0.0f}).view({1, 6});
  EXPECT_EQ(Support(FilterTopKTopP(logits, 3, 1.0)[0]),
            (std::set<int64_t>{1, 3, 4}));
  EXPECT_EQ(Support(FilterTopKTopP(logits, 1, 1.0)[0]), (std::set<int64_t>{1}));
  EXPECT_EQ(Support(FilterTopKTopP(logits, 6, 1.0)[0]).size(), 6u);
  EXPECT_EQ(Support(FilterTopKTopP(logits, 0, 1.0)[0]).size(), 6u);
  const auto ties = torch::tensor({1.0f, 5.0f, 5.0f, 5.0f, 0.0f}).view({1, 5});
  EXPECT_EQ(Support(FilterTopKTopP(ties, 2, 1.0)[0]),
            (std::set<int64_t>{1, 2}));
}

TEST(SamplerTest, TopPKeepsTheSmallestPrefixReachingP) {
  // Descending probabilities 0.5 (id 3), 0.2 (id 0), 0.15 (id 4), 0.1 (id 1),
  // 0.05 (id 2): cumulative mass before each is 0, .5, .7, .85, .95.
  const auto logits = LogitsOf({0.2, 0.1, 0.05, 0.5, 0.15});
  EXPECT_EQ(Support(FilterTopKTopP(logits, 0, 0.45)[0]),
            (std::set<int64_t>{3}));
  EXPECT_EQ(Support(FilterTopKTopP(logits, 0, 0.6)[0]),
            (std::set<int64_t>{3, 0}));
  EXPECT_EQ(Support(FilterTopKTopP(logits, 0, 0.75)[0]),
            (std::set<int64_t>{3, 0, 4}));
  EXPECT_EQ(Support(FilterTopKTopP(logits, 0, 0.9)[0]),
            (std::set<int64_t>{3, 0, 4, 1}));
  EXPECT_EQ(Support(FilterTopKTopP(logits, 0, 0.99)[0]).size(), 5u);
  // A tiny p still keeps the most likely token.
  EXPECT_EQ(Support(FilterTopKTopP(logits, 0, 1e-6)[0]),
            (std::set<int64_t>{3}));
  // top-k first, then top-p over the renormalised top-k: among {0.5, 0.2}
  // the first holds 0.714 of the mass.
  EXPECT_EQ(Support(FilterTopKTopP(logits, 2, 0.7)[0]), (std::set<int64_t>{3}));
  EXPECT_EQ(Support(FilterTopKTopP(logits, 2, 0.75)[0]),
            (std::set<int64_t>{3, 0}));
  // Rows are filtered independently.
  const auto two = torch::cat({logits, LogitsOf({0.05, 0.15, 0.5, 0.1, 0.2})});
  const auto f = FilterTopKTopP(two, 0, 0.6);
  EXPECT_EQ(Support(f[0]), (std::set<int64_t>{3, 0}));
  EXPECT_EQ(Support(f[1]), (std::set<int64_t>{2, 4}));
}

TEST(SamplerTest, TopPOnALargeVocabularyMatchesBruteForce) {
  // 20000 tokens: the nucleus search takes the partial-sort path, which must
  // keep the same support as sorting everything.
  auto gen = at::detail::createCPUGenerator(17);
  const auto logits = torch::randn({3, 20000}, gen) * 4.0;
  for (double p : {0.3, 0.8, 0.95}) {
    const auto filtered = FilterTopKTopP(logits, 0, p);
    for (int64_t r = 0; r < 3; ++r) {
      const auto probs = torch::softmax(logits[r].to(torch::kDouble), -1);
      std::vector<std::pair<double, int64_t>> order;
      for (int64_t v = 0; v < 20000; ++v) {
        order.emplace_back(probs[v].item<double>(), v);
      }
      std::sort(order.begin(), order.end(),
                [](const auto& a, const auto& b) { return a.first > b.first; });
      std::set<int64_t> want;
      double before = 0;
      for (const auto& [prob, id] : order) {
        if (before >= p) break;
        want.insert(id);
        before += prob;
      }
      EXPECT_EQ(Support(filtered[r]), want) << "p " << p << " row " << r;
    }
  }
}

TEST(SamplerTest, SeededStreamsRepeatAndDiffer) {
  SequenceRng a(7, 0), b(7, 0), c(7, 1), d(8, 0);
  int same_c = 0, same_d = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    same_c += x == c.Next();
    same_d += x == d.Next();
  }
  EXPECT_EQ(same_c, 0);
  EXPECT_EQ(same_d, 0);
  SequenceRng u(1, 2);
  for (int i = 0; i < 1000; ++i) {
    const double v = u.Uniform();
    EXPECT_GE(v, 0.0);
    EXPECT_LT(v, 1.0);
  }
}

TEST(SamplerTest, FrequenciesFollowTheFilteredDistribution) {
  const auto logits = LogitsOf({0.5, 0.3, 0.15, 0.05});
  SamplingParams params;
  SequenceRng rng(11, 0);
  std::vector<int> counts(4, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const auto s = SampleTokens(logits, params, {&rng});
    ++counts[s.ids[0]];
    EXPECT_NEAR(s.logprobs[0],
                std::log(std::vector<double>{0.5, 0.3, 0.15, 0.05}[s.ids[0]]),
                1e-5);
  }
  // 4 standard deviations of a binomial at n = 20000 is under 0.015.
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.015);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.015);
  EXPECT_NEAR(counts[2] / double(n), 0.15, 0.015);
  EXPECT_NEAR(counts[3] / double(n), 0.05, 0.01);

  params.top_k = 2;
  std::vector<int> topk(4, 0);
  for (int i = 0; i < 5000; ++i) {
    ++topk[SampleTokens(logits, params, {&rng}).ids[0]];
  }
  EXPECT_EQ(topk[2] + topk[3], 0);
  EXPECT_NEAR(topk[0] / 5000.0, 0.5 / 0.8, 0.03);
}

TEST(SamplerTest, TemperatureScalesLogProbsAndZeroIsGreedy) {
  const auto logits = torch::tensor({1.0f, 2.0f, 0.5f}).view({1, 3});
  SamplingParams params;
  params.temperature = 0.5;
  SequenceRng rng(3, 0);
  const auto s = SampleTokens(logits, params, {&rng});
  const auto want = torch::log_softmax(logits / 0.5, -1)[0][s.ids[0]];
  EXPECT_NEAR(s.logprobs[0], want.item<float>(), 1e-6);
  params.temperature = 0;
  const auto g = SampleTokens(logits, params, {&rng});
  EXPECT_EQ(g.ids[0], 1);
  EXPECT_NEAR(g.logprobs[0], torch::log_softmax(logits, -1)[0][1].item<float>(),
              1e-6);
}

TEST(SamplerTest, ParamsFromJsonNameBadFields) {
  const auto p = SamplingParams::FromJson(
      {{"temperature", 0.7}, {"top_p", 0.9}, {"stop", {"</answer>"}}},
      "sampling");
  EXPECT_DOUBLE_EQ(p.top_p, 0.9);
  EXPECT_EQ(p.stop_strings, std::vector<std::string>{"</answer>"});
  try {
    SamplingParams::FromJson({{"top_k", -1}}, "sampling");
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("top_k"), std::string::npos);
  }
  EXPECT_THROW(SamplingParams::FromJson({{"temperature", "hot"}}, "sampling"),
               BadRequest);
}

}  // namespace
}  // namespace clinrl::policy
