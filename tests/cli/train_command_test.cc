// `clinrl train` as an operator runs it: a diverging run must exit non-zero
// with a message that names the step, the value and the option to change; a
// SIGTERM stops it with a checkpoint that resumes bit-equal.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/cli/run_clinrl.h"

namespace {

using clinrl::testing::RunClinrl;
using clinrl::testing::TinyEchoConfig;
using nlohmann::json;

// A tiny GRPO run on the echo env; the entropy bonus gives the first step a
// gradient whatever the rewards, so lr 1e30 moves every weight to ~1e30.
std::string TinyGrpoConfig(const std::string& name) {
  return TinyEchoConfig(name, {{"trainer", {{"entropy_coef", 0.01}}}});
}

TEST(TrainCommandTest, HugeLearningRateExitsNonZeroNamingTheValue) {
  const std::string config = TinyGrpoConfig("cli_diverging");
  const auto r =
      RunClinrl("train " + config + " --set trainer.lr=1e30 --no-baselines");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("error: grpo step "), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.find("the loss is") != std::string::npos ||
              r.out.find("gradient norm (grad_norm) is") != std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("trainer.non_finite=skip"), std::string::npos) << r.out;
}

TEST(TrainCommandTest, BadNonFiniteOptionNamesTheAllowedValues) {
  const auto r = RunClinrl("config show " + TinyGrpoConfig("cli_bad_option") +
                           " --set trainer.non_finite=ignore");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("trainer.non_finite: got 'ignore', expected one of: "
                       "stop, skip"),
            std::string::npos)
      << r.out;
}

// Env options are checked by the env's own schema when the env server
// starts, before any step: a misspelt one is one line naming its config key.
TEST(TrainCommandTest, MisspeltEnvOptionIsOneLineNamingItsKey) {
  const auto r = RunClinrl("train " + TinyGrpoConfig("cli_bad_env") +
                           " --set envs.0.options.max_turn=2 --no-baselines");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("error: envs.0.options.max_turn: unknown key (did you "
                        "mean 'max_turns'?)",
                        0),
            0u)
      << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
}

// A GPU device is refused when the run starts, in one line, before any
// step: on a machine without CUDA (and, until GPU placement lands, on one
// with it) instead of failing deep in a step or training on the CPU.
TEST(TrainCommandTest, CudaDeviceIsRefusedAtStartInOneLine) {
  const auto r = RunClinrl("train " + TinyGrpoConfig("cli_cuda") +
                           " --set policy.device=cuda --no-baselines");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("error: policy.device: got 'cuda'", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  EXPECT_FALSE(std::filesystem::exists(::testing::TempDir() +
                                       "/cli_runs/cli_cuda/metrics.jsonl"));
}

// `clinrl plan`'s check runs first: a model no machine holds (about 70 TB
// of float32 weights) is refused in one line naming the largest item,
// before anything is built or written.
TEST(TrainCommandTest, RunThatCannotFitIsRefusedNamingTheLargestItem) {
  const std::string config = TinyGrpoConfig("cli_too_big");
  const auto r =
      RunClinrl("train " + config +
                " --set policy.init.hidden_size=131072"
                " --set policy.init.intermediate_size=524288"
                " --set policy.init.num_hidden_layers=64"
                " --set policy.init.num_attention_heads=1024 --no-baselines");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("error: memory: the run cannot fit on cpu", 0), 0u)
      << r.out;
  EXPECT_NE(r.out.find("largest item: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--skip-memory-check"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  EXPECT_FALSE(
      std::filesystem::exists(::testing::TempDir() + "/cli_runs/cli_too_big"));
}

// The newest checkpoint's weights of run `name` (under cli_runs).
std::string LatestWeights(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "cli_runs" / name /
      "checkpoints";
  std::string latest;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string step = entry.path().filename().string();
    if (step.rfind("step_", 0) == 0 && step > latest) latest = step;
  }
  EXPECT_FALSE(latest.empty()) << "no checkpoint in " << dir;
  std::ifstream in(dir / latest / "model" / "model.safetensors",
                   std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int64_t LoggedSteps(const std::string& name) {
  std::ifstream in(::testing::TempDir() + "/cli_runs/" + name +
                   "/metrics.jsonl");
  int64_t steps = 0;
  for (std::string line; std::getline(in, line);) {
    steps += line.find("\"stage\"") != std::string::npos;
  }
  return steps;
}

// SIGTERM (Slurm's, Kubernetes', a user's kill) mid-GRPO: the step in
// progress finishes and is checkpointed, the process exits 143 (128 +
// SIGTERM) saying how to continue, and --resume ends with the same weights
// as a run never stopped.
TEST(TrainCommandTest, SigtermCheckpointsTheStepAndResumesBitEqual) {
  const std::string steps =
      " --set trainer.steps=10 --set "
      "trainer.checkpoint_every=0 --no-baselines";
  const auto straight =
      RunClinrl("train " + TinyGrpoConfig("cli_straight") + steps);
  ASSERT_EQ(straight.exit_code, 0) << straight.out;

  const std::string config = TinyGrpoConfig("cli_sigterm");
  const std::string log = ::testing::TempDir() + "/cli_sigterm.log";
  std::vector<std::string> args = {CLINRL_BINARY, "train", config};
  for (const char* a : {"--set", "trainer.steps=10", "--set",
                        "trainer.checkpoint_every=0", "--no-baselines"}) {
    args.push_back(a);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  ASSERT_EQ(posix_spawn_file_actions_init(&files), 0);
  ASSERT_EQ(posix_spawn_file_actions_addopen(
                &files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
            0);
  ASSERT_EQ(posix_spawn_file_actions_adddup2(&files, 1, 2), 0);
  pid_t pid = 0;
  ASSERT_EQ(
      posix_spawn(&pid, CLINRL_BINARY, &files, nullptr, argv.data(), environ),
      0);
  posix_spawn_file_actions_destroy(&files);
  // Signal it once two steps are logged (bounded: 60 s).
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (LoggedSteps("cli_sigterm") < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(LoggedSteps("cli_sigterm"), 2);
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL() << "clinrl train did not stop within 60 s of SIGTERM";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::ifstream log_in(log);
  const std::string out(std::istreambuf_iterator<char>(log_in), {});
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 143) << out;
  EXPECT_NE(out.find("stopped by signal 15; the last step is checkpointed: "
                     "add --resume to the same command to continue"),
            std::string::npos)
      << out;
  const int64_t done = LoggedSteps("cli_sigterm");
  EXPECT_LT(done, 10) << "the run was not stopped early";
  // The step that was running when the signal came is the checkpoint.
  EXPECT_TRUE(std::filesystem::exists(::testing::TempDir() +
                                      "/cli_runs/cli_sigterm/checkpoints/" +
                                      fmt::format("step_{:08d}", done)))
      << out;

  const auto resumed = RunClinrl("train " + config + steps + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out;
  EXPECT_EQ(LoggedSteps("cli_sigterm"), 10);
  const std::string a = LatestWeights("cli_straight");
  const std::string b = LatestWeights("cli_sigterm");
  EXPECT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "resumed weights differ from the run never stopped";
}

}  // namespace
