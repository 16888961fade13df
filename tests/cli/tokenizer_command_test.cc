#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli/run_clinrl.h"

namespace {

using clinrl::testing::RunClinrl;

TEST(TokenizerCommandTest, TrainsOnTheTurnsOfDemonstrations) {
  const std::string dir = ::testing::TempDir() + "/tokenizer_cli";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto demos =
      RunClinrl("env demos --env echo --split train --n 50 --out " + dir +
                "/demos.jsonl");
  ASSERT_EQ(demos.exit_code, 0) << demos.out;
  const auto trained = RunClinrl(
      "tokenizer train --corpus " + dir +
      "/demos.jsonl --trajectories --vocab-size 300 --out " + dir + "/tok");
  ASSERT_EQ(trained.exit_code, 0) << trained.out;
  const auto figures =
      nlohmann::json::parse(trained.out.substr(trained.out.rfind('{')));
  EXPECT_GT(figures["merges"].get<int>(), 0);
  EXPECT_LT(figures["corpus_tokens"].get<int>(),
            figures["corpus_bytes"].get<int>());
  EXPECT_TRUE(std::filesystem::exists(dir + "/tok/tokenizer.json"));
  // Without --trajectories the same file is plain text, JSON syntax included:
  // the turns' text alone is much shorter than the JSONL.
  const auto raw =
      RunClinrl("tokenizer train --corpus " + dir +
                "/demos.jsonl --vocab-size 300 --out " + dir + "/raw");
  ASSERT_EQ(raw.exit_code, 0) << raw.out;
  const auto raw_figures =
      nlohmann::json::parse(raw.out.substr(raw.out.rfind('{')));
  EXPECT_GT(raw_figures["corpus_bytes"].get<int>(),
            2 * figures["corpus_bytes"].get<int>());
}

TEST(TokenizerCommandTest, BadTrajectoryFileIsAnError) {
  const std::string path = ::testing::TempDir() + "/not_trajectories.jsonl";
  FILE* f = fopen(path.c_str(), "w");
  fputs("{\"hello\": 1}\n", f);
  fclose(f);
  const auto r = RunClinrl("tokenizer train --corpus " + path +
                           " --trajectories --vocab-size 300 --out " +
                           ::testing::TempDir() + "/never");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("trajectory.episode_id"), std::string::npos) << r.out;
}

}  // namespace
