// An env mixture as researchers run one: dx_dialogue and ehr_fhir in this
// process and the Python gymnasium example env (python/clinrl_env's
// triage_quiz) in its own server process, in one `clinrl train` run. Every
// env's tasks are played, scored and trained on, and each env gets its own
// training and evaluation figures.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "core/config.h"
#include "core/jsonl.h"
#include "envs/env_client.h"
#include "tests/python/python_triage_server.h"
#include "trainer/training_run.h"

namespace clinrl::trainer {
namespace {

using nlohmann::json;

TEST(EnvMixtureRun, CppAndPythonEnvsTrainInOneRun) {
  clinrl::testing::PythonTriageServer server;
  {
    envs::EnvClient client({server.endpoint, 1000});
    clinrl::testing::AwaitServer(client);
  }
  const std::string out = ::testing::TempDir() + "/mixture_runs";
  std::filesystem::remove_all(out);
  const json doc = {
      {"run",
       {{"name", "three_envs"}, {"out_dir", out}, {"seed", 5}, {"threads", 1}}},
      {"policy",
       {{"init",
         {{"hidden_size", 32},
          {"intermediate_size", 64},
          {"num_hidden_layers", 1},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"max_position_embeddings", 8192}}},
        {"tokenizer", "byte"}}},
      {"envs", json::array({{{"name", "dx_dialogue"},
                             {"weight", 1.0},
                             {"options", {{"max_turns", 2}}}},
                            {{"name", "ehr_fhir"},
                             {"weight", 1.0},
                             {"options", {{"max_turns", 2}}}},
                            {{"name", "triage_quiz"},
                             {"weight", 2.0},
                             {"endpoint", server.endpoint}}})},
      {"rollout",
       {{"group_size", 2},
        {"tasks_per_step", 6},
        {"max_turns", 2},
        {"max_tokens_per_turn", 4},
        // ehr_fhir's reset prompt is ~4000 bytes of FHIR data.
        {"max_tokens_per_episode", 6000}}},
      {"trainer",
       {{"stages", {"grpo"}},
        {"steps", 3},
        {"lr", 1e-3},
        {"micro_batch", 4},
        {"eval_every", 3},
        {"val_before_train", false}}},
      {"eval", {{"validation_episodes", 2}, {"test_episodes", 2}}}};
  ClinrlConfig config = config::ReadConfig<ClinrlConfig>(doc, {});
  TrainingRunOptions options;
  options.final_eval = true;
  options.baselines = true;  // a mixture goes without the scripted rows
  TrainingRun run(config, options);
  run.Run();

  const std::string dir = out + "/three_envs";
  std::map<std::string, int64_t> train, test;
  ReadJsonl(dir + "/trajectories.jsonl", [&](const json& j, int64_t) {
    const std::string env = j.at("env");
    if (j.value("split", "") == "train" && !j.contains("eval")) ++train[env];
    if (j.value("split", "") == "test") ++test[env];
  });
  for (const char* env : {"dx_dialogue", "ehr_fhir", "triage_quiz"}) {
    EXPECT_GT(train[env], 0) << env << " was never drawn";
    EXPECT_EQ(test[env], 2) << env;  // the first 2 test tasks of each env
  }
  EXPECT_EQ(train["dx_dialogue"] + train["ehr_fhir"] + train["triage_quiz"],
            3 * 6 * 2);
  std::set<std::string> step_envs, eval_envs;
  ReadJsonl(dir + "/metrics.jsonl", [&](const json& j, int64_t) {
    for (const char* env : {"dx_dialogue", "ehr_fhir", "triage_quiz"}) {
      if (j.contains(std::string("env/") + env + "/reward/mean")) {
        (j.contains("eval") ? eval_envs : step_envs).insert(env);
      }
    }
  });
  EXPECT_EQ(step_envs.size(), 3u);
  EXPECT_EQ(eval_envs.size(), 3u);
}

}  // namespace
}  // namespace clinrl::trainer
