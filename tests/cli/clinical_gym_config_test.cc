// configs/clinical_gym.json, the env mixture of docs/envs/ (dx_dialogue,
// ehr_fhir, med_calc, safety_pushback, consult_rubric, ehr_workflow), as a
// user starts it: one short step of it trains, and the run's test figures
// and report carry every env of the mixture on its own.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/cli/run_clinrl.h"

namespace {

using clinrl::testing::RunClinrl;
using nlohmann::json;

TEST(ClinicalGymConfig, OneStepTrainsAndReportsEachEnv) {
  const std::string out = ::testing::TempDir() + "/clinical_gym_runs";
  std::filesystem::remove_all(out);
  const auto trained = RunClinrl(
      std::string("train ") + CLINRL_CONFIGS_DIR +
      "/clinical_gym.json --no-baselines --set run.out_dir=" + out +
      " --set run.threads=1 --set trainer.steps=1 --set rollout.group_size=2"
      " --set rollout.tasks_per_step=4 --set trainer.val_before_train=false"
      " --set trainer.eval_every=0 --set eval.test_episodes=1");
  ASSERT_EQ(trained.exit_code, 0) << trained.out;
  const std::string dir = out + "/clinical_gym";
  std::ifstream in(dir + "/summary.json");
  const json summary = json::parse(in);
  json test;
  for (const json& row : summary) {
    if (row["split"] == "test") test = row["metrics"];
  }
  ASSERT_TRUE(test.is_object()) << summary.dump(2);
  std::ifstream report_in(dir + "/report.html");
  std::stringstream report;
  report << report_in.rdbuf();
  for (const char* env :
       {"dx_dialogue", "ehr_fhir", "med_calc", "safety_pushback",
        "consult_rubric", "ehr_workflow"}) {
    const std::string key = std::string("env/") + env + "/episodes";
    EXPECT_EQ(test.value(key, 0.0), 1.0) << key << " in " << test.dump(2);
    EXPECT_NE(report.str().find(std::string("env/") + env), std::string::npos)
        << "report.html has no figures of " << env;
  }
}

}  // namespace
