#include "trainer/grpo_loss.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tests/trainer/reference_runner.h"
#include "trainer/group_advantages.h"

namespace clinrl::trainer {
namespace {

using nlohmann::json;

json ToJson2d(const torch::Tensor& t) {
  json out = json::array();
  auto a = t.accessor<double, 2>();
  for (int64_t i = 0; i < t.size(0); ++i) {
    json row = json::array();
    for (int64_t j = 0; j < t.size(1); ++j) row.push_back(a[i][j]);
    out.push_back(row);
  }
  return out;
}

torch::Tensor FromJson2d(const json& j) {
  const int64_t rows = j.size(), cols = j[0].size();
  torch::Tensor t = torch::empty({rows, cols}, torch::kFloat64);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < cols; ++k) t[i][k] = j[i][k].get<double>();
  return t;
}

struct LossCase {
  GrpoLossInputs inputs;
  GrpoLossOptions options;
  std::string agg, kl;
  json spec;
};

TEST(GrpoLossTest, MatchesIndependentReference) {
  torch::manual_seed(7);
  const int64_t B = 4, T = 6;
  std::vector<LossCase> cases;
  json spec = {{"advantages", json::array()}, {"losses", json::array()}};
  spec["advantages"].push_back({{"rewards", {1.0, 0.0, 0.5, 0.25, 1.0, 0.0}},
                                {"groups", {0, 0, 0, 1, 1, 1}},
                                {"mode", "grpo"}});
  spec["advantages"].push_back({{"rewards", {1.0, 0.0, 0.5, 0.25, 1.0, 0.0}},
                                {"groups", {0, 0, 0, 1, 1, 1}},
                                {"mode", "dr_grpo"}});
  for (const char* agg :
       {"token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"}) {
    for (const char* kl : {"k1", "k2", "k3"}) {
      for (bool tis : {false, true}) {
        LossCase c;
        const torch::Tensor old = -torch::rand({B, T}, torch::kFloat64) * 3;
        // Ratios spread across both clip bounds.
        const torch::Tensor logp =
            old + torch::randn({B, T}, torch::kFloat64) * 0.4;
        const torch::Tensor ref =
            old + torch::randn({B, T}, torch::kFloat64) * 0.3;
        const torch::Tensor rollout =
            old + torch::randn({B, T}, torch::kFloat64) * 0.5;
        const torch::Tensor entropy = torch::rand({B, T}, torch::kFloat64);
        torch::Tensor mask = (torch::rand({B, T}) > 0.3).to(torch::kFloat64);
        mask[0][0] = 1;
        const torch::Tensor adv =
            torch::tensor({1.2, -0.7, 0.3, -1.5}, torch::kFloat64);
        c.inputs.logprobs = logp.clone().requires_grad_(true);
        c.inputs.old_logprobs = old;
        c.inputs.ref_logprobs = ref;
        c.inputs.entropy = entropy;
        c.inputs.mask = mask;
        c.inputs.advantages = adv;
        if (tis) c.inputs.rollout_logprobs = rollout;
        c.options.aggregation = ParseLossAggregation(agg);
        c.options.kl_estimator = ParseKlEstimator(kl);
        c.options.kl_coef = 0.05;
        c.options.entropy_coef = 0.01;
        c.options.tis_cap = 1.5;
        json s = {{"logprobs", ToJson2d(logp)},
                  {"old_logprobs", ToJson2d(old)},
                  {"ref_logprobs", ToJson2d(ref)},
                  {"entropy", ToJson2d(entropy)},
                  {"mask", ToJson2d(mask)},
                  {"advantages", {1.2, -0.7, 0.3, -1.5}},
                  {"options",
                   {{"clip_low", 0.2},
                    {"clip_high", 0.28},
                    {"kl_coef", 0.05},
                    {"kl_estimator", kl},
                    {"agg", agg},
                    {"tis_cap", 1.5},
                    {"entropy_coef", 0.01}}}};
        if (tis) s["rollout_logprobs"] = ToJson2d(rollout);
        spec["losses"].push_back(s);
        c.agg = agg;
        c.kl = kl;
        cases.push_back(std::move(c));
      }
    }
  }
  const json expected = clinrl::testing::RunPythonReference(
      "tests/trainer/reference/grpo_reference.py", spec);

  const auto adv = GroupAdvantages({1.0, 0.0, 0.5, 0.25, 1.0, 0.0},
                                   {0, 0, 0, 1, 1, 1}, AdvantageMode::kGrpo);
  const auto dr = GroupAdvantages({1.0, 0.0, 0.5, 0.25, 1.0, 0.0},
                                  {0, 0, 0, 1, 1, 1}, AdvantageMode::kDrGrpo);
  for (size_t i = 0; i < adv.size(); ++i) {
    EXPECT_NEAR(adv[i], expected["advantages"][0][i].get<double>(), 1e-9);
    EXPECT_NEAR(dr[i], expected["advantages"][1][i].get<double>(), 1e-12);
  }

  double max_clip_low = 0, max_clip_high = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].agg + " " + cases[i].kl + (i % 2 ? " tis" : ""));
    const json& e = expected["losses"][i];
    const GrpoLossOutput out = GrpoLoss(cases[i].inputs, cases[i].options);
    out.loss.backward();
    EXPECT_NEAR(out.loss.item<double>(), e["loss"].get<double>(), 1e-10);
    EXPECT_NEAR(out.pg_loss, e["pg_loss"].get<double>(), 1e-10);
    EXPECT_NEAR(out.kl, e["kl"].get<double>(), 1e-10);
    EXPECT_NEAR(out.clip_frac_low, e["clip_frac_low"].get<double>(), 1e-12);
    EXPECT_NEAR(out.clip_frac_high, e["clip_frac_high"].get<double>(), 1e-12);
    if (i % 2) {
      EXPECT_NEAR(out.tis_weight_mean, e["tis_weight_mean"].get<double>(),
                  1e-10);
    }
    const torch::Tensor grad = cases[i].inputs.logprobs.grad();
    EXPECT_LT((grad - FromJson2d(e["grad"])).abs().max().item<double>(), 1e-10);
    max_clip_low = std::max(max_clip_low, out.clip_frac_low);
    max_clip_high = std::max(max_clip_high, out.clip_frac_high);
  }
  // The cases must exercise both clip bounds, or the clip test tests nothing.
  EXPECT_GT(max_clip_low, 0.0);
  EXPECT_GT(max_clip_high, 0.0);
}

// RLOO and REINFORCE++ advantages, and the GSPO and CISPO losses (rows as
// sequences, and packed rows with sequence ids), against the reference.
TEST(GrpoLossTest, EstimatorsMatchIndependentReference) {
  torch::manual_seed(11);
  const int64_t B = 3, T = 7;
  const std::vector<double> rewards = {1.0, 0.0, 0.5, 0.25, 1.0, 0.0, 3.0};
  const std::vector<int64_t> groups = {0, 0, 0, 1, 1, 1, 2};
  json spec = {{"advantages", json::array()}, {"losses", json::array()}};
  for (const char* mode : {"rloo", "reinforce_pp"}) {
    spec["advantages"].push_back(
        {{"rewards", rewards}, {"groups", groups}, {"mode", mode}});
  }
  std::vector<LossCase> cases;
  // Packed: row 0 holds sequences 1 and 2, row 2 sequences 3 and 4.
  const torch::Tensor ids = torch::tensor(
      {{1, 1, 1, 1, 2, 2, 2}, {5, 5, 5, 5, 5, 5, 5}, {3, 3, 4, 4, 4, 4, 4}},
      torch::kLong);
  json ids_json = json::array();
  for (int64_t r = 0; r < B; ++r) {
    json row = json::array();
    for (int64_t t = 0; t < T; ++t) row.push_back(ids[r][t].item<int64_t>());
    ids_json.push_back(row);
  }
  for (const char* loss : {"gspo", "cispo"}) {
    for (const char* agg : {"token_mean", "seq_mean_token_mean"}) {
      for (bool packed : {false, true}) {
        LossCase c;
        const torch::Tensor old = -torch::rand({B, T}, torch::kFloat64) * 3;
        const torch::Tensor logp =
            old + torch::randn({B, T}, torch::kFloat64) * 0.3;
        const torch::Tensor rollout =
            old + torch::randn({B, T}, torch::kFloat64) * 0.2;
        torch::Tensor mask = (torch::rand({B, T}) > 0.25).to(torch::kFloat64);
        mask[0][0] = 1;
        const torch::Tensor adv =
            torch::tensor({0.9, -1.1, 0.4}, torch::kFloat64);
        c.inputs.logprobs = logp.clone().requires_grad_(true);
        c.inputs.old_logprobs = old;
        c.inputs.mask = mask;
        c.inputs.advantages = adv;
        c.inputs.rollout_logprobs = rollout;
        if (packed) c.inputs.sequence_ids = ids;
        c.options.policy_loss = ParsePolicyLoss(loss);
        c.options.aggregation = ParseLossAggregation(agg);
        // GSPO's ratios are sequence means: a tight range clips them.
        const double clip = std::string(loss) == "gspo" ? 0.02 : 0.2;
        c.options.clip_low = clip;
        c.options.clip_high = clip;
        c.options.tis_cap = 1.5;
        json s = {{"logprobs", ToJson2d(logp)},
                  {"old_logprobs", ToJson2d(old)},
                  {"rollout_logprobs", ToJson2d(rollout)},
                  {"mask", ToJson2d(mask)},
                  {"advantages", {0.9, -1.1, 0.4}},
                  {"options",
                   {{"policy_loss", loss},
                    {"clip_low", clip},
                    {"clip_high", clip},
                    {"agg", agg},
                    {"tis_cap", 1.5}}}};
        if (packed) s["sequence_ids"] = ids_json;
        spec["losses"].push_back(s);
        c.agg = std::string(loss) + " " + agg + (packed ? " packed" : "");
        cases.push_back(std::move(c));
      }
    }
  }
  const json expected = clinrl::testing::RunPythonReference(
      "tests/trainer/reference/grpo_reference.py", spec);
  const auto rloo = GroupAdvantages(rewards, groups, AdvantageMode::kRloo);
  const auto rpp =
      GroupAdvantages(rewards, groups, AdvantageMode::kReinforcePlusPlus);
  for (size_t i = 0; i < rewards.size(); ++i) {
    EXPECT_NEAR(rloo[i], expected["advantages"][0][i].get<double>(), 1e-12);
    EXPECT_NEAR(rpp[i], expected["advantages"][1][i].get<double>(), 1e-9);
  }
  double clipped = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].agg);
    const json& e = expected["losses"][i];
    const GrpoLossOutput out = GrpoLoss(cases[i].inputs, cases[i].options);
    out.loss.backward();
    EXPECT_NEAR(out.loss.item<double>(), e["loss"].get<double>(), 1e-10);
    EXPECT_NEAR(out.clip_frac_low, e["clip_frac_low"].get<double>(), 1e-12);
    EXPECT_NEAR(out.clip_frac_high, e["clip_frac_high"].get<double>(), 1e-12);
    const torch::Tensor grad = cases[i].inputs.logprobs.grad();
    EXPECT_LT((grad - FromJson2d(e["grad"])).abs().max().item<double>(), 1e-10);
    clipped += out.clip_frac_low + out.clip_frac_high;
  }
  EXPECT_GT(clipped, 0.0);  // the clip ranges were exercised
}

// CISPO keeps a gradient on tokens whose ratio left the clip range, where
// PPO's clipped surrogate has none.
TEST(GrpoLossTest, CispoKeepsTheGradientOfClippedTokens) {
  GrpoLossInputs in;
  in.old_logprobs = torch::tensor({{-1.0, -1.0}}, torch::kFloat64);
  // Token 0 far above 1 + clip_high, token 1 inside the range.
  in.logprobs =
      torch::tensor({{-0.2, -0.95}}, torch::kFloat64).requires_grad_(true);
  in.advantages = torch::tensor({1.0}, torch::kFloat64);
  in.mask = torch::ones({1, 2}, torch::kFloat64);
  GrpoLossOptions opt;
  opt.tis_cap = 0;
  GrpoLoss(in, opt).loss.backward();
  EXPECT_EQ(in.logprobs.grad()[0][0].item<double>(), 0.0);
  in.logprobs.mutable_grad() = torch::Tensor();
  opt.policy_loss = PolicyLoss::kCispo;
  GrpoLoss(in, opt).loss.backward();
  // -(1 + clip_high) * A / 2 tokens.
  EXPECT_NEAR(in.logprobs.grad()[0][0].item<double>(), -1.28 / 2, 1e-12);
}

TEST(GrpoLossTest, MaskedTokensGetZeroGradient) {
  torch::manual_seed(3);
  GrpoLossInputs in;
  in.logprobs = (-torch::rand({2, 5}, torch::kFloat64)).requires_grad_(true);
  in.old_logprobs = in.logprobs.detach() + 0.1;
  in.ref_logprobs = in.logprobs.detach() - 0.2;
  in.entropy = torch::rand({2, 5}, torch::kFloat64);
  in.advantages = torch::tensor({1.0, -1.0}, torch::kFloat64);
  in.mask = torch::tensor({{1, 1, 0, 0, 1}, {0, 1, 1, 0, 0}}, torch::kFloat64);
  GrpoLossOptions opt;
  opt.kl_coef = 0.1;
  for (auto agg :
       {LossAggregation::kTokenMean, LossAggregation::kSeqMeanTokenMean,
        LossAggregation::kSeqMeanTokenSumNorm}) {
    opt.aggregation = agg;
    in.logprobs.mutable_grad() = torch::Tensor();
    GrpoLoss(in, opt).loss.backward();
    const torch::Tensor g = in.logprobs.grad();
    EXPECT_EQ((g * (1 - in.mask)).abs().sum().item<double>(), 0.0);
    EXPECT_GT((g * in.mask).abs().sum().item<double>(), 0.0);
  }
}

TEST(GrpoLossTest, OneStepMovesProbabilityTowardHigherReward) {
  // Toy policy: one categorical over 4 tokens, two sampled completions of one
  // token each; the completion with token 2 gets reward 1, token 0 gets 0.
  torch::Tensor logits = torch::zeros({4}, torch::requires_grad());
  const std::vector<double> rewards = {1.0, 0.0};
  const auto adv = GroupAdvantages(rewards, {0, 0}, AdvantageMode::kGrpo);
  const torch::Tensor tokens = torch::tensor({2, 0}, torch::kLong);
  const double before = torch::softmax(logits, 0)[2].item<double>();
  for (int step = 0; step < 1; ++step) {
    const torch::Tensor logp =
        torch::log_softmax(logits, 0).index_select(0, tokens).unsqueeze(1);
    GrpoLossInputs in;
    in.logprobs = logp;
    in.old_logprobs = logp.detach();
    in.advantages = torch::tensor({adv[0], adv[1]});
    in.mask = torch::ones({2, 1});
    GrpoLoss(in, GrpoLossOptions{}).loss.backward();
    torch::NoGradGuard no_grad;
    logits -= 0.5 * logits.grad();
  }
  const torch::Tensor p = torch::softmax(logits.detach(), 0);
  EXPECT_GT(p[2].item<double>(), before);
  EXPECT_LT(p[0].item<double>(), 0.25);
}

TEST(GrpoLossTest, ShapeErrorsNameTheInput) {
  GrpoLossInputs in;
  in.logprobs = torch::zeros({2, 3});
  in.old_logprobs = torch::zeros({2, 4});
  in.mask = torch::ones({2, 3});
  in.advantages = torch::zeros({2});
  try {
    GrpoLoss(in, {});
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("old_logprobs"), std::string::npos);
  }
  in.old_logprobs = torch::zeros({2, 3});
  in.advantages = torch::zeros({3});
  EXPECT_THROW(GrpoLoss(in, {}), BadRequest);
  EXPECT_THROW(ParseLossAggregation("sum"), ConfigError);
  EXPECT_THROW(ParseKlEstimator("k0"), ConfigError);
}

}  // namespace
}  // namespace clinrl::trainer
