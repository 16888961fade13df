// LoRA adapters: a fresh adapter changes nothing, gradients reach only the
// adapters, the generation engine (merged q/k/v and gate/up, low-rank deltas
// elsewhere) samples the log-probs the training forward computes, a merged
// model equals the adapter-applied one, and adapters cross to and from PEFT
// (tests/policy/reference/peft_lora.py, the venv's peft and transformers)
// with the same logits.
#include "policy/lora.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/clinrl_config.h"
#include "core/error.h"
#include "policy/generator.h"
#include "policy/lora_checkpoint.h"
#include "policy/model_dir.h"
#include "policy/safetensors.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

LoraOptions AllSevenTargets(int64_t rank = 4) {
  LoraOptions lora;
  lora.rank = rank;
  lora.alpha = 8.0;
  lora.target_modules = LoraTargetNames();
  lora.seed = 11;
  return lora;
}

// B is zero at the start, so every adapter would look right: draw it.
void RandomiseAdapters(Transformer& model, uint64_t seed, double scale) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : model->named_parameters()) {
    if (!IsLoraParameter(p.key())) continue;
    torch::Tensor cpu = torch::empty(p.value().sizes(), torch::kFloat);
    cpu.normal_(0.0, scale, gen);
    p.value().copy_(cpu);
  }
}

torch::Tensor Ids() {
  return torch::tensor({{3, 17, 42, 5, 99, 120, 7, 64, 250, 11}}, torch::kLong);
}

torch::Tensor Logits(Transformer& model, const torch::Tensor& ids) {
  torch::NoGradGuard no_grad;
  return model->forward(ids);
}

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

class LoraFamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraFamilyTest, AFreshAdapterLeavesTheModelUnchanged) {
  Transformer model = testing::SharpTinyModel(GetParam());
  const torch::Tensor before = Logits(model, Ids());
  model->AddLora(AllSevenTargets());
  EXPECT_EQ(MaxDiff(Logits(model, Ids()), before), 0.0);
}

TEST_P(LoraFamilyTest, GradientsReachOnlyTheAdapters) {
  Transformer model = testing::SharpTinyModel(GetParam());
  LoraOptions lora = AllSevenTargets();
  lora.target_modules = {"q_proj", "v_proj", "down_proj"};
  model->AddLora(lora);
  RandomiseAdapters(model, 1, 0.05);
  model->train();
  model->forward(Ids()).logsumexp(-1).sum().backward();
  int64_t adapters = 0;
  for (const auto& p : model->named_parameters()) {
    const bool adapter = IsLoraParameter(p.key());
    EXPECT_EQ(p.value().requires_grad(), adapter) << p.key();
    if (adapter) {
      ++adapters;
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
    } else {
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    }
  }
  // Two matrices per targeted projection per layer.
  EXPECT_EQ(adapters, 2 * 3 * model->config().num_hidden_layers);
}

TEST_P(LoraFamilyTest, EngineSamplesTheTrainingForwardsLogProbs) {
  Transformer model = testing::SharpTinyModel(GetParam());
  model->AddLora(AllSevenTargets());
  RandomiseAdapters(model, 2, 0.2);
  model->eval();
  SamplingParams params;
  params.temperature = 1.0;
  params.max_new_tokens = 12;
  params.seed = 9;
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4}, {9, 8}};
  const auto outputs = Generate(model, prompts, params);
  double worst = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    std::vector<int64_t> seq = prompts[b];
    seq.insert(seq.end(), outputs[b].token_ids.begin(),
               outputs[b].token_ids.end());
    const torch::Tensor ids = torch::tensor(seq).view({1, -1});
    const torch::Tensor lp = torch::log_softmax(Logits(model, ids)[0], -1);
    for (size_t i = 0; i < outputs[b].token_ids.size(); ++i) {
      const double want =
          lp[prompts[b].size() - 1 + i][outputs[b].token_ids[i]].item<double>();
      worst = std::max(worst, std::abs(want - outputs[b].logprobs[i]));
    }
  }
  EXPECT_LT(worst, 1e-4);
  // The adapters matter: without them the same tokens score differently.
  Transformer plain = testing::SharpTinyModel(GetParam());
  EXPECT_GT(MaxDiff(Logits(plain, Ids()), Logits(model, Ids())), 1e-2);
}

TEST_P(LoraFamilyTest, MergedModelEqualsTheAdapterApplied) {
  Transformer model = testing::SharpTinyModel(GetParam());
  model->AddLora(AllSevenTargets());
  RandomiseAdapters(model, 3, 0.2);
  Transformer merged = MergeLora(model);
  EXPECT_FALSE(merged->has_lora());
  const torch::Tensor want = Logits(model, Ids());
  EXPECT_LT(MaxDiff(Logits(merged, Ids()), want), 1e-4);
  // Everything trains again in a merged model.
  for (const auto& p : merged->parameters()) EXPECT_TRUE(p.requires_grad());
}

INSTANTIATE_TEST_SUITE_P(Families, LoraFamilyTest,
                         ::testing::Values("qwen2", "qwen3", "llama"));

TEST(LoraTest, AdapterFolderRoundTripsAndChecksItsConfig) {
  testing::TempDir dir;
  Transformer model = testing::SharpTinyModel("qwen2");
  model->AddLora(AllSevenTargets());
  RandomiseAdapters(model, 4, 0.2);
  SaveLoraAdapter(model, dir.path() + "/adapter", "base-model");
  const nlohmann::json config = nlohmann::json::parse(
      ReadFile(dir.path() + "/adapter/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["base_model_name_or_path"], "base-model");
  SafetensorsFile file(dir.path() + "/adapter/adapter_model.safetensors");
  EXPECT_TRUE(file.Has(
      "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_EQ(file.Names().size(),
            size_t(2 * 7 * model->config().num_hidden_layers));

  Transformer fresh = testing::SharpTinyModel("qwen2");
  LoadLoraAdapter(fresh, dir.path() + "/adapter");
  EXPECT_EQ(MaxDiff(Logits(fresh, Ids()), Logits(model, Ids())), 0.0);

  // An adapter of another rank does not load into these adapters.
  Transformer other = testing::SharpTinyModel("qwen2");
  other->AddLora(AllSevenTargets(/*rank=*/2));
  try {
    LoadLoraAdapter(other, dir.path() + "/adapter");
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("r 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LoadLoraAdapter(fresh, dir.path() + "/missing"), NotFound);
  // What clinrl cannot apply is refused naming the key.
  for (const auto& [key, value] :
       {std::pair<std::string, nlohmann::json>{"use_dora", true},
        {"modules_to_save", {"lm_head"}}}) {
    nlohmann::json unsupported = config;
    unsupported[key] = value;
    WriteFileAtomic(dir.path() + "/adapter/adapter_config.json",
                    unsupported.dump());
    try {
      LoadLoraAdapter(fresh, dir.path() + "/adapter");
      FAIL() << "expected BadRequest for " << key;
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(LoraTest, ConfigErrorsNameTheField) {
  LoraConfig config;
  config.rank = 8;
  config.target_modules = {"q_proj", "qkv_proj"};
  try {
    LoraOptions::FromConfig(config, 0);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("policy.lora.target_modules[1]"), std::string::npos);
    EXPECT_NE(what.find("qkv_proj"), std::string::npos);
  }
  config.target_modules = {"q_proj"};
  config.dropout = 1.0;
  EXPECT_THROW(LoraOptions::FromConfig(config, 0), ConfigError);
  config.rank = 0;  // off: nothing else is checked
  EXPECT_FALSE(LoraOptions::FromConfig(config, 0).enabled());
}

// --- PEFT, the reference -------------------------------------------------

std::string Script(const std::string& name) {
  return std::string(CLINRL_SOURCE_DIR) + "/tests/policy/reference/" + name;
}

void RunChecked(const std::string& command) {
  const int rc = testing::RunShell(command);
  ASSERT_EQ(rc, 0) << command << "\nexit status " << rc;
}

// Writes the ids as input.json for the reference scripts.
std::string WriteInput(const std::string& dir, const torch::Tensor& ids) {
  nlohmann::json input;
  std::vector<int64_t> row(ids.data_ptr<int64_t>(),
                           ids.data_ptr<int64_t>() + ids.size(1));
  input["input_ids"] = {row};
  input["attention_mask"] = {std::vector<int64_t>(row.size(), 1)};
  const std::string path = dir + "/input.json";
  std::ofstream(path) << input.dump();
  return path;
}

TEST(LoraPeftTest, PeftLoadsClinrlsAdapterAndClinrlLoadsPefts) {
  testing::TempDir dir;
  const std::string base = dir.path() + "/base";
  RunChecked(fmt::format("{} {} --create qwen2 --model {} --seed 5",
                         CLINRL_PYTHON, Script("hf_models.py"), base));
  const torch::Tensor ids = Ids();
  const std::string input = WriteInput(dir.path(), ids);

  // clinrl's adapter, applied by PEFT.
  Transformer model = LoadModel(base);
  model->AddLora(AllSevenTargets());
  RandomiseAdapters(model, 6, 0.3);
  SaveLoraAdapter(model, dir.path() + "/ours", base);
  RunChecked(
      fmt::format("{} {} --model {} --adapter {} --input {} --reference {}",
                  CLINRL_PYTHON, Script("peft_lora.py"), base,
                  dir.path() + "/ours", input, dir.path() + "/ours.st"));
  const torch::Tensor ours = Logits(model, ids);
  const double to_peft =
      MaxDiff(SafetensorsFile(dir.path() + "/ours.st").Get("logits"), ours);
  EXPECT_LT(to_peft, 1e-4);
  Transformer base_model = LoadModel(base);
  EXPECT_GT(MaxDiff(ours, Logits(base_model, ids)), 1e-1);

  // The merged export loads in transformers alone with the same logits.
  Transformer merged = MergeLora(model);
  SaveModel(merged, dir.path() + "/merged");
  RunChecked(
      fmt::format("{} {} --model {} --input {} --reference {} "
                  "--max-new-tokens 1",
                  CLINRL_PYTHON, Script("hf_models.py"), dir.path() + "/merged",
                  input, dir.path() + "/merged.st"));
  const double merged_in_hf =
      MaxDiff(SafetensorsFile(dir.path() + "/merged.st").Get("logits"), ours);
  EXPECT_LT(merged_in_hf, 1e-4);

  // PEFT's adapter (four targets, its own rank and alpha), loaded by clinrl.
  RunChecked(
      fmt::format("{} {} --model {} --create-adapter {} --rank 3 --alpha 6 "
                  "--targets q_proj,o_proj,up_proj,down_proj --seed 8 "
                  "--input {} --reference {}",
                  CLINRL_PYTHON, Script("peft_lora.py"), base,
                  dir.path() + "/theirs", input, dir.path() + "/theirs.st"));
  Transformer loaded = LoadModel(base);
  LoadLoraAdapter(loaded, dir.path() + "/theirs");
  EXPECT_EQ(loaded->options().lora().rank, 3);
  const double from_peft =
      MaxDiff(SafetensorsFile(dir.path() + "/theirs.st").Get("logits"),
              Logits(loaded, ids));
  EXPECT_LT(from_peft, 1e-4);
  std::printf(
      "[ lora ] max |logit diff|: clinrl->peft %.3g, merged in "
      "transformers %.3g, peft->clinrl %.3g\n",
      to_peft, merged_in_hf, from_peft);
}

}  // namespace
}  // namespace clinrl::policy
