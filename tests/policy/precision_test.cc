// Precision and placement: device and precision names, the autocast guard,
// and how far bf16 sampling's log-probs sit from the learner's (the
// "training/inference mismatch" the trainer measures and corrects).
#include "policy/precision.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "policy/generator.h"
#include "policy/transformer.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

std::string ConfigErrorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(PrecisionTest, DeviceNamesAreCheckedAtStart) {
  EXPECT_EQ(ParseDevice("cpu", "policy.device"), torch::Device(torch::kCPU));
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU"}) {
    const std::string what =
        ConfigErrorOf([&] { ParseDevice(bad, "policy.device"); });
    EXPECT_NE(what.find("policy.device"), std::string::npos) << bad;
    EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos)
        << what;
    EXPECT_NE(what.find("cpu, cuda or cuda:N"), std::string::npos) << what;
  }
  const std::string past =
      ConfigErrorOf([] { ParseDevice("cuda:99", "policy.device"); });
  EXPECT_NE(past.find("policy.device: got 'cuda:99'"), std::string::npos)
      << past;
  if (torch::cuda::is_available()) {
    EXPECT_TRUE(ParseDevice("cuda", "policy.device").is_cuda());
  } else {
    // A GPU-less machine refuses a cuda config in one line, at start.
    const std::string what =
        ConfigErrorOf([] { ParseDevice("cuda", "policy.device"); });
    EXPECT_NE(what.find("policy.device: got 'cuda', but this process sees no "
                        "CUDA device"),
              std::string::npos)
        << what;
  }
}

TEST(PrecisionTest, PrecisionNames) {
  EXPECT_EQ(ParsePrecision("fp32", "trainer.precision"), Precision::kFp32);
  EXPECT_EQ(ParsePrecision("bf16", "trainer.precision"), Precision::kBf16);
  EXPECT_STREQ(PrecisionName(Precision::kBf16), "bf16");
  EXPECT_EQ(ConfigErrorOf([] { ParsePrecision("fp16", "trainer.precision"); }),
            "trainer.precision: got 'fp16', expected one of: fp32, bf16");
}

TEST(PrecisionTest, AutocastGuardNestsAndRestores) {
  const torch::Device cpu(torch::kCPU);
  ASSERT_FALSE(at::autocast::is_autocast_enabled(torch::kCPU));
  const torch::Tensor a = torch::randn({4, 4});
  {
    const AutocastGuard outer(cpu, Precision::kBf16);
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
    {
      const AutocastGuard inner(cpu, Precision::kBf16);
      EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
    }
    EXPECT_TRUE(at::autocast::is_autocast_enabled(torch::kCPU));
    {
      const AutocastGuard off(cpu, Precision::kFp32);  // leaves it as is
      EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
    }
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(torch::kCPU));
  EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat);
}

Transformer PeakyModel() {
  Transformer m(testing::TinyConfig("qwen2"));
  m->ResetParameters(23);
  // Weights 5x the init spread the logits as a trained model's are, so the
  // rounding of bf16 products shows in the log-probs.
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) {
    if (p.dim() == 2) p.mul_(5.0);
  }
  m->eval();
  return m;
}

struct Mismatch {
  double mean = 0, max = 0;
};

// |sampling-time log-prob - learner log-prob| over the generated tokens.
Mismatch Compare(const std::vector<std::vector<int64_t>>& prompts,
                 const std::vector<GenerationOutput>& outputs,
                 Transformer& learner) {
  Mismatch m;
  double count = 0;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int64_t> ids = prompts[i];
    ids.insert(ids.end(), outputs[i].token_ids.begin(),
               outputs[i].token_ids.end());
    const auto t = torch::tensor(ids, torch::kLong).view({1, -1});
    const torch::Tensor lp = SequenceLogProbs(learner, t)[0];
    const int64_t first = static_cast<int64_t>(prompts[i].size()) - 1;
    for (size_t k = 0; k < outputs[i].logprobs.size(); ++k) {
      const double d =
          std::abs(lp[first + static_cast<int64_t>(k)].item<double>() -
                   static_cast<double>(outputs[i].logprobs[k]));
      m.mean += d;
      m.max = std::max(m.max, d);
      ++count;
    }
  }
  m.mean /= std::max(1.0, count);
  return m;
}

// The stated bf16 tolerance (docs/training.md): bf16 sampling against the
// bf16 learner within 0.01 nats mean, 0.05 max, per token; against a
// float32 learner within 0.02 mean. float32 on both sides agrees to 1e-4.
TEST(PrecisionTest, Bf16SamplingLogProbsStayNearTheLearners) {
  Transformer model = PeakyModel();
  const std::vector<std::vector<int64_t>> prompts = {
      {1, 2, 3, 4, 5}, {10, 20, 30, 40, 50, 60, 70}, {7}, {90, 91, 92}};
  SamplingParams params;
  params.temperature = 1.0;
  params.max_new_tokens = 24;
  params.seed = 5;

  model->set_precision(Precision::kFp32);
  const auto fp32_out = Generate(model, prompts, params);
  const Mismatch fp32 = Compare(prompts, fp32_out, model);
  EXPECT_LT(fp32.max, 1e-4);

  model->set_precision(Precision::kBf16);
  const auto bf16_out = Generate(model, prompts, params);
  const Mismatch bf16 = Compare(prompts, bf16_out, model);
  model->set_precision(Precision::kFp32);
  const Mismatch cross = Compare(prompts, bf16_out, model);
  std::cout << "log-prob mismatch: fp32/fp32 mean " << fp32.mean << " max "
            << fp32.max << "; bf16/bf16 mean " << bf16.mean << " max "
            << bf16.max << "; bf16 sampler/fp32 learner mean " << cross.mean
            << " max " << cross.max << std::endl;
  EXPECT_GT(bf16.max, 0.0);  // bf16 really ran
  EXPECT_LT(bf16.mean, 0.01);
  EXPECT_LT(bf16.max, 0.05);
  EXPECT_LT(cross.mean, 0.02);
}

}  // namespace
}  // namespace clinrl::policy
