// End-to-end runs of `clinrl distributed run`: learner, rollout workers, env
// and reward servers as separate processes over ipc://, started by the test
// (--role) or by launch/mpirun; a rollout worker killed mid-run; a learner
// killed mid-run. Tiny model, tiny steps: each test takes a few seconds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/atomic_file.h"
#include "policy/safetensors.h"
#include "trainer/checkpoint.h"

extern char** environ;

namespace clinrl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Child {
  pid_t pid = -1;
  std::string log;
};

Child Spawn(const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t actions;
  EXPECT_EQ(posix_spawn_file_actions_init(&actions), 0);
  EXPECT_EQ(posix_spawn_file_actions_addopen(
                &actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
            0);
  EXPECT_EQ(posix_spawn_file_actions_adddup2(&actions, 1, 2), 0);
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  Child child;
  child.log = log;
  const int rc = posix_spawnp(&child.pid, argv[0], &actions, nullptr,
                              argv.data(), environ);
  EXPECT_EQ(rc, 0) << "spawning " << args[0] << ": " << strerror(rc);
  posix_spawn_file_actions_destroy(&actions);
  return child;
}

// The exit status, or -1 after `timeout_s` (the child is then killed) or
// 128 + signal when a signal ended it.
int WaitExit(Child& child, double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (true) {
    int status = 0;
    const pid_t r = waitpid(child.pid, &status, WNOHANG);
    if (r == child.pid) {
      child.pid = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    if (Clock::now() > deadline) {
      kill(child.pid, SIGKILL);
      waitpid(child.pid, &status, 0);
      child.pid = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> MetricsLines(const std::string& run_dir) {
  std::vector<json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("stage", "") == "grpo") out.push_back(j);
  }
  return out;
}

// Polls until metrics.jsonl has `steps` GRPO lines; false after the timeout.
bool WaitForSteps(const std::string& run_dir, size_t steps, double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (Clock::now() < deadline) {
    if (MetricsLines(run_dir).size() >= steps) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class DistributedRunTest : public ::testing::Test {
 protected:
  // Writes the config of a run named after the test; returns its path.
  std::string WriteConfig(int64_t steps, int64_t rollout_ranks,
                          int64_t checkpoint_every, int64_t learner_ranks = 1,
                          int64_t server_ranks = 1, std::string run = "run",
                          bool overlap = false) {
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = ::testing::TempDir() + "clinrl-dist-" + std::to_string(getpid()) +
           "-" + name_;
    fs::remove_all(dir_ + "/" + run);
    fs::create_directories(dir_);
    const json doc = {
        {"run",
         {{"name", run}, {"out_dir", dir_}, {"seed", 5}, {"threads", 1}}},
        {"policy",
         {{"init",
           {{"hidden_size", 32},
            {"intermediate_size", 64},
            {"num_hidden_layers", 2},
            {"num_attention_heads", 4},
            {"num_key_value_heads", 2},
            {"max_position_embeddings", 512}}},
          {"tokenizer", "byte"}}},
        {"envs",
         json::array({{{"name", "echo"}, {"options", {{"max_turns", 2}}}}})},
        {"rollout",
         {{"group_size", 4},
          {"tasks_per_step", 4},
          {"max_turns", 2},
          {"max_tokens_per_turn", 6}}},
        {"trainer",
         {{"stages", {"sft", "grpo"}},
          {"steps", steps},
          {"kl_coef", 0.01},
          {"sft",
           {{"demo_episodes", 16},
            {"steps", 3},
            {"batch_size", 6},
            {"eval_every", 0}}},
          {"lr", 1e-3},
          {"micro_batch", 8},
          {"checkpoint_every", checkpoint_every},
          {"keep_checkpoints", 10}}},
        {"distributed",
         {{"learner_ranks", learner_ranks},
          {"rollout_ranks", rollout_ranks},
          {"env_server_ranks", server_ranks},
          {"reward_server_ranks", server_ranks},
          {"overlap", overlap},
          {"heartbeat_ms", 250},
          {"heartbeat_misses", 4},
          {"timeout_s", 60}}},
        {"eval", {{"validation_episodes", 2}, {"test_episodes", 2}}}};
    const std::string path = dir_ + "/" + run + ".json";
    WriteFileAtomic(path, doc.dump(2));
    return path;
  }

  Child Start(const std::string& config, const std::string& role, int index) {
    return Spawn({CLINRL_BINARY, "distributed", "run", config, "--role", role,
                  "--index", std::to_string(index)},
                 fmt_log(role, index));
  }

  // One process of each role (env server, reward server, rollout worker,
  // learner), run to the end; each must exit 0. Returns the learner.
  Child RunEveryRole(const std::string& config) {
    children_.push_back(Start(config, "env_server", 0));
    children_.push_back(Start(config, "reward_server", 0));
    children_.push_back(Start(config, "rollout", 0));
    Child learner = Start(config, "learner", 0);
    EXPECT_EQ(WaitExit(learner, 50), 0) << Slurp(learner.log);
    for (Child& c : children_) {
      EXPECT_EQ(WaitExit(c, 10), 0) << Slurp(c.log);
    }
    return learner;
  }

  // Runs each config through launch/mpirun, one after the other; each must
  // exit 0.
  void LaunchEach(std::initializer_list<std::string> configs) {
    for (const std::string& config : configs) {
      Child launcher =
          Spawn({CLINRL_SOURCE_DIR "/launch/mpirun", config}, config + ".log");
      ASSERT_EQ(WaitExit(launcher, 55), 0) << Slurp(launcher.log);
    }
  }

  // Resumes run `run` of `config` on one learner rank, one GRPO step longer
  // (a change of trainer.steps has to be named); returns its newest
  // checkpoint.
  std::string ResumeOnOneRank(const std::string& config,
                              const std::string& run) {
    Child resumed =
        Spawn({CLINRL_SOURCE_DIR "/launch/mpirun", config, "--set",
               "distributed.learner_ranks=1", "--set", "trainer.steps=3",
               "--resume", "--allow-config-change", "trainer.steps"},
              dir_ + "/resume.log");
    EXPECT_EQ(WaitExit(resumed, 55), 0) << Slurp(resumed.log);
    EXPECT_NE(Slurp(resumed.log).find("resumed from"), std::string::npos);
    return trainer::LatestCheckpoint(dir_ + "/" + run + "/checkpoints");
  }

  std::string fmt_log(const std::string& role, int index) const {
    return dir_ + "/" + role + "-" + std::to_string(index) + ".log";
  }
  std::string run_dir() const { return dir_ + "/run"; }

  void TearDown() override {
    for (Child& c : children_) {
      if (c.pid > 0) WaitExit(c, 0);
    }
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string name_;
  std::string dir_;
  std::vector<Child> children_;  // killed on teardown if still running
};

TEST_F(DistributedRunTest, SeparateProcessesOverIpcCompleteTrainingSteps) {
  const std::string config = WriteConfig(3, 1, 0);
  const Child learner = RunEveryRole(config);
  const std::vector<json> steps = MetricsLines(run_dir());
  ASSERT_EQ(steps.size(), 3u) << Slurp(learner.log);
  for (const json& s : steps) {
    EXPECT_EQ(s.value("remote/workers_alive", -1.0), 1.0) << s;
    // max_policy_lag 1 bounds how far behind the learner a sample may be.
    EXPECT_GE(s.value("remote/policy_lag_mean", -1.0), 0.0) << s;
    EXPECT_LE(s.value("remote/policy_lag_mean", -1.0), 1.0) << s;
    EXPECT_EQ(s.value("remote/groups_stale", -1.0), 0.0) << s;
  }
  const std::string worker_log = Slurp(fmt_log("rollout", 0));
  // 3 steps x 4 task groups, every one played by the only worker.
  EXPECT_NE(worker_log.find("\"groups\":12"), std::string::npos) << worker_log;
  EXPECT_NE(Slurp(fmt_log("env_server", 0)).find("the learner ended the run"),
            std::string::npos);
  // The worker scored through the reward server (rewards.endpoint of its
  // role map): 12 groups of 4 episodes, none flagged.
  const std::string reward_log = Slurp(fmt_log("reward_server", 0));
  EXPECT_NE(reward_log.find("scored 48 trajectories, 0 flagged"),
            std::string::npos)
      << reward_log;
  EXPECT_FALSE(trainer::LatestCheckpoint(run_dir() + "/checkpoints").empty());
}

// Over tcp:// (roles started by hand bind loopback) every endpoint uses the
// run's CURVE keys: the first role writes <run dir>/curve (folder 0700, files
// 0600), every role loads them, and the run completes only if the worker,
// env server, reward server and learner accept one another's keys.
TEST_F(DistributedRunTest, TcpRunWritesCurveKeysAndEveryRoleUsesThem) {
  const std::string path = WriteConfig(2, 1, 0);
  json doc = json::parse(Slurp(path));
  doc["distributed"]["transport"] = "tcp";
  // Below the ephemeral range, apart for each test process.
  doc["distributed"]["base_port"] = 21000 + (getpid() % 1000) * 10;
  WriteFileAtomic(path, doc.dump(2));
  const Child learner = RunEveryRole(path);
  EXPECT_EQ(MetricsLines(run_dir()).size(), 2u) << Slurp(learner.log);
  const std::string keys = run_dir() + "/curve";
  EXPECT_EQ(fs::status(keys).permissions() & fs::perms::all,
            fs::perms::owner_all);
  for (const char* f :
       {"server.public", "server.secret", "client.public", "client.secret"}) {
    EXPECT_EQ(fs::status(keys + "/" + f).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write)
        << f;
  }
  const std::string env_log = Slurp(fmt_log("env_server", 0));
  EXPECT_NE(env_log.find("on tcp://127.0.0.1:"), std::string::npos) << env_log;
  EXPECT_NE(env_log.find("; CURVE)"), std::string::npos) << env_log;
  EXPECT_NE(Slurp(fmt_log("rollout", 0)).find("CURVE keys of the run: " + keys),
            std::string::npos);
  EXPECT_EQ(env_log.find("refused"), std::string::npos) << env_log;
}

// A LoRA policy across processes: the worker gets the frozen base with its
// first version and the adapters alone after that (weights/sent_bytes grows
// by the adapters' bytes per version), and the run completes.
TEST_F(DistributedRunTest, LoraWorkersGetTheBaseOnceThenAdapters) {
  const std::string config = WriteConfig(3, 1, 0);
  json doc = json::parse(ReadFile(config));
  doc["policy"]["lora"] = {{"rank", 2},
                           {"target_modules", {"q_proj", "v_proj"}}};
  WriteFileAtomic(config, doc.dump(2));
  const Child learner = RunEveryRole(config);
  const std::vector<json> steps = MetricsLines(run_dir());
  ASSERT_EQ(steps.size(), 3u) << Slurp(learner.log);
  const auto sent = [&](size_t i) {
    return steps[i].at("weights/sent_bytes").get<double>();
  };
  const double first = sent(0);
  const double later = sent(2) - sent(1);
  EXPECT_GT(later, 0) << "no adapters were sent after the first version";
  EXPECT_LT(later * 10, first)
      << "later versions should carry the adapters alone";
  EXPECT_TRUE(fs::exists(trainer::LatestCheckpoint(run_dir() + "/checkpoints") +
                         "/adapter/adapter_model.safetensors"));
}

// distributed.overlap: the worker plays step k+1's groups with weights k
// while the learner updates on step k. Steps after the first train on
// episodes up to one version behind (within max_policy_lag, none stale),
// and the run completes as a synchronous one does.
TEST_F(DistributedRunTest, OverlappedRolloutPlaysTheNextStepDuringTheUpdate) {
  const std::string config = WriteConfig(4, 1, 0, 1, 1, "run", true);
  const Child learner = RunEveryRole(config);
  const std::vector<json> steps = MetricsLines(run_dir());
  ASSERT_EQ(steps.size(), 4u) << Slurp(learner.log);
  double ahead = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    EXPECT_EQ(s.value("remote/groups_stale", -1.0), 0.0) << s;
    const double lag = s.value("remote/policy_lag_mean", -1.0);
    // Step 1 is played on demand with the weights it trains on; later steps
    // were queued before the previous update, so the groups the worker
    // started before the new weights arrived are one version behind.
    EXPECT_GE(lag, 0.0) << s;
    EXPECT_LE(lag, i == 0 ? 0.0 : 1.0) << "step " << i + 1 << ": " << s;
    if (i > 0) ahead += lag;
  }
  EXPECT_GT(ahead, 0.0) << "no group was played ahead of the update";
  EXPECT_NE(Slurp(fmt_log("rollout", 0)).find("\"groups\":16"),
            std::string::npos);
}

TEST_F(DistributedRunTest, KilledRolloutWorkerIsReplacedAndTrainingCompletes) {
  const std::string config = WriteConfig(8, 2, 0);
  children_.push_back(Start(config, "env_server", 0));
  children_.push_back(Start(config, "reward_server", 0));
  children_.push_back(Start(config, "rollout", 0));
  Child victim = Start(config, "rollout", 1);
  Child learner = Start(config, "learner", 0);
  ASSERT_TRUE(WaitForSteps(run_dir(), 1, 40)) << Slurp(learner.log);
  ASSERT_EQ(kill(victim.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit(victim, 5), 128 + SIGKILL);
  EXPECT_EQ(WaitExit(learner, 50), 0) << Slurp(learner.log);
  for (Child& c : children_) {
    EXPECT_EQ(WaitExit(c, 10), 0) << Slurp(c.log);
  }
  const std::vector<json> steps = MetricsLines(run_dir());
  ASSERT_EQ(steps.size(), 8u);
  const json& last = steps.back();
  EXPECT_EQ(last.value("remote/workers_lost", -1.0), 1.0) << last;
  EXPECT_EQ(last.value("remote/workers_alive", -1.0), 1.0) << last;
  const std::string log = Slurp(learner.log);
  EXPECT_NE(log.find("rollout worker rollout-1 missed 4 heartbeats"),
            std::string::npos)
      << log;
}

TEST_F(DistributedRunTest, KilledLearnerStopsTheOthersAndKeepsItsCheckpoint) {
  const std::string config = WriteConfig(400, 1, 1);
  children_.push_back(Start(config, "env_server", 0));
  children_.push_back(Start(config, "reward_server", 0));
  children_.push_back(Start(config, "rollout", 0));
  Child learner = Start(config, "learner", 0);
  ASSERT_TRUE(WaitForSteps(run_dir(), 3, 40)) << Slurp(learner.log);
  ASSERT_EQ(kill(learner.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit(learner, 5), 128 + SIGKILL);
  // Every other process notices within 4 missed heartbeats (1 s) and
  // exits with an error that says why.
  for (Child& c : children_) {
    EXPECT_EQ(WaitExit(c, 10), 1) << Slurp(c.log);
    EXPECT_NE(Slurp(c.log).find("has not answered 4 heartbeats"),
              std::string::npos)
        << Slurp(c.log);
  }
  // Checkpoints are written atomically: whatever instant the learner died,
  // the newest complete one passes its size and CRC checks.
  const std::string latest =
      trainer::LatestCheckpoint(run_dir() + "/checkpoints");
  ASSERT_FALSE(latest.empty());
  const trainer::CheckpointInfo info = trainer::OpenCheckpoint(latest);
  EXPECT_GE(info.step, 2);
}

// The env server of a hand-started run dies: the rollout worker's episodes
// fail at once (the connection dropped), the learner stops at the next step
// naming the env servers instead of training on env_error episodes, and
// every other role exits non-zero saying why.
TEST_F(DistributedRunTest, KilledEnvServerStopsTheRunNamingIt) {
  const std::string config = WriteConfig(400, 1, 1);
  Child env_server = Start(config, "env_server", 0);
  children_.push_back(Start(config, "reward_server", 0));
  children_.push_back(Start(config, "rollout", 0));
  Child learner = Start(config, "learner", 0);
  ASSERT_TRUE(WaitForSteps(run_dir(), 2, 40)) << Slurp(learner.log);
  ASSERT_EQ(kill(env_server.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit(env_server, 5), 128 + SIGKILL);
  const auto killed = Clock::now();
  EXPECT_EQ(WaitExit(learner, 20), 1) << Slurp(learner.log);
  EXPECT_LT(Clock::now() - killed, std::chrono::seconds(20));
  const std::string log = Slurp(learner.log);
  EXPECT_NE(log.find("episodes ended env_error, more than "
                     "trainer.max_env_error_fraction = 0.1"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("(role env_server)"), std::string::npos) << log;
  EXPECT_NE(log.find("disconnected"), std::string::npos) << log;
  // The others hear from the learner why the run ended, and exit 1 too.
  for (Child& c : children_) {
    EXPECT_EQ(WaitExit(c, 10), 1) << Slurp(c.log);
    EXPECT_NE(Slurp(c.log).find("the learner's run failed: grpo step "),
              std::string::npos)
        << Slurp(c.log);
  }
  // No step trained on the failed episodes: every logged step had none.
  for (const json& step : MetricsLines(run_dir())) {
    EXPECT_EQ(step.value("termination/env_error", 0.0), 0.0) << step;
  }
}

// SIGTERM to every process, as srun and mpirun deliver it: the learner
// finishes its step, checkpoints it and ends the run; the others serve until
// it does; every one exits 143 (128 + SIGTERM).
TEST_F(DistributedRunTest, SigtermToEveryRoleCheckpointsTheStepAndExits143) {
  const std::string config = WriteConfig(400, 1, 0);
  children_.push_back(Start(config, "env_server", 0));
  children_.push_back(Start(config, "reward_server", 0));
  children_.push_back(Start(config, "rollout", 0));
  Child learner = Start(config, "learner", 0);
  ASSERT_TRUE(WaitForSteps(run_dir(), 2, 40)) << Slurp(learner.log);
  for (Child& c : children_) ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  ASSERT_EQ(kill(learner.pid, SIGTERM), 0);
  EXPECT_EQ(WaitExit(learner, 30), 143) << Slurp(learner.log);
  for (Child& c : children_) {
    EXPECT_EQ(WaitExit(c, 10), 143) << Slurp(c.log);
  }
  // checkpoint_every is 0: the only checkpoint is the signal's, of the last
  // step logged (global steps count the 3 SFT steps too).
  const std::string latest =
      trainer::LatestCheckpoint(run_dir() + "/checkpoints");
  ASSERT_FALSE(latest.empty()) << Slurp(learner.log);
  EXPECT_EQ(trainer::OpenCheckpoint(latest).step,
            3 + static_cast<int64_t>(MetricsLines(run_dir()).size()))
      << Slurp(learner.log);
  EXPECT_NE(Slurp(learner.log).find("stopping on signal 15 after global step"),
            std::string::npos)
      << Slurp(learner.log);
}

// The reward server dies: the rollout worker's scoring fails at once, the
// worker reports why to the learner before exiting, and the learner, left
// without workers, stops naming the reward server instead of waiting
// distributed.timeout_s (60 s here).
TEST_F(DistributedRunTest, KilledRewardServerStopsTheRunNamingIt) {
  const std::string config = WriteConfig(400, 1, 1);
  children_.push_back(Start(config, "env_server", 0));
  Child reward_server = Start(config, "reward_server", 0);
  Child worker = Start(config, "rollout", 0);
  Child learner = Start(config, "learner", 0);
  ASSERT_TRUE(WaitForSteps(run_dir(), 2, 40)) << Slurp(learner.log);
  ASSERT_EQ(kill(reward_server.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit(reward_server, 5), 128 + SIGKILL);
  const auto killed = Clock::now();
  EXPECT_EQ(WaitExit(worker, 20), 1) << Slurp(worker.log);
  EXPECT_EQ(WaitExit(learner, 20), 1) << Slurp(learner.log);
  EXPECT_LT(Clock::now() - killed, std::chrono::seconds(20));
  const std::string log = Slurp(learner.log);
  EXPECT_NE(log.find("no rollout worker is left"), std::string::npos) << log;
  EXPECT_NE(log.find("(role reward_server)"), std::string::npos) << log;
  for (Child& c : children_) {
    EXPECT_EQ(WaitExit(c, 10), 1) << Slurp(c.log);
  }
}

TEST_F(DistributedRunTest, LaunchMpirunRunsEveryRoleUnderMpiexec) {
  const std::string config = WriteConfig(2, 1, 0);
  Child launcher =
      Spawn({CLINRL_SOURCE_DIR "/launch/mpirun", config}, dir_ + "/mpirun.log");
  EXPECT_EQ(WaitExit(launcher, 55), 0) << Slurp(launcher.log);
  const std::string log = Slurp(launcher.log);
  // The launcher prints the command it runs: 4 ranks for 4 roles.
  EXPECT_NE(log.find("+ mpirun -n 4 "), std::string::npos) << log;
  EXPECT_NE(log.find("--oversubscribe"), std::string::npos) << log;
  EXPECT_EQ(MetricsLines(run_dir()).size(), 2u) << log;
  EXPECT_NE(log.find("rollout worker rollout-0: the learner ended the run"),
            std::string::npos)
      << log;
}

// The pid of the process of this test's run with MPI rank `rank`.
pid_t RankPid(const std::string& config, int rank) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmdline_in(entry.path() / "cmdline");
    const std::string cmdline(std::istreambuf_iterator<char>(cmdline_in), {});
    if (cmdline.find(config) == std::string::npos ||
        cmdline.find("distributed") == std::string::npos) {
      continue;
    }
    std::ifstream environ_in(entry.path() / "environ");
    const std::string env(std::istreambuf_iterator<char>(environ_in), {});
    const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
    if (env.find(std::string(1, '\0') + want + '\0') != std::string::npos ||
        env.rfind(want + '\0', 0) == 0) {
      return static_cast<pid_t>(std::stoi(name));
    }
  }
  return -1;
}

// Under mpirun a dead env server takes the job down at once; the launcher
// has said which role each of Open MPI's rank numbers is, so the operator
// reads "rank 1 = env_server 0", not only a number.
TEST_F(DistributedRunTest, KilledEnvServerUnderMpirunIsNamedByRole) {
  const std::string config = WriteConfig(400, 1, 0);
  Child launcher =
      Spawn({CLINRL_SOURCE_DIR "/launch/mpirun", config}, dir_ + "/mpirun.log");
  ASSERT_TRUE(WaitForSteps(run_dir(), 2, 40)) << Slurp(launcher.log);
  const pid_t env_server = RankPid(config, 1);  // learners first, then envs
  ASSERT_GT(env_server, 0);
  ASSERT_EQ(kill(env_server, SIGKILL), 0);
  const auto killed = Clock::now();
  EXPECT_NE(WaitExit(launcher, 20), 0) << Slurp(launcher.log);
  EXPECT_LT(Clock::now() - killed, std::chrono::seconds(20));
  const std::string log = Slurp(launcher.log);
  EXPECT_NE(log.find("launch/mpirun: ranks: rank 0 = learner 0; rank 1 = "
                     "env_server 0; rank 2 = reward_server 0; rank 3 = "
                     "rollout 0"),
            std::string::npos)
      << log;
  // Open MPI names the dead process by its rank number.
  EXPECT_NE(log.find("rank 1"), std::string::npos) << log;
  // Nothing was trained on episodes the dead server failed.
  for (const json& step : MetricsLines(run_dir())) {
    EXPECT_EQ(step.value("termination/env_error", 0.0), 0.0) << step;
  }
}

// SIGTERM to launch/mpirun (a user's kill, a scheduler): the launcher sends
// every rank a stop request through mpirun (SIGUSR2, as a SIGTERM to mpirun
// would abort the job), the learner checkpoints its step, and the launcher
// exits 143.
TEST_F(DistributedRunTest, SigtermToLaunchMpirunCheckpointsTheStep) {
  const std::string config = WriteConfig(400, 1, 0);
  Child launcher =
      Spawn({CLINRL_SOURCE_DIR "/launch/mpirun", config}, dir_ + "/mpirun.log");
  ASSERT_TRUE(WaitForSteps(run_dir(), 2, 40)) << Slurp(launcher.log);
  ASSERT_EQ(kill(launcher.pid, SIGTERM), 0);
  EXPECT_EQ(WaitExit(launcher, 40), 143) << Slurp(launcher.log);
  const std::string latest =
      trainer::LatestCheckpoint(run_dir() + "/checkpoints");
  ASSERT_FALSE(latest.empty()) << Slurp(launcher.log);
  EXPECT_EQ(trainer::OpenCheckpoint(latest).step,
            3 + static_cast<int64_t>(MetricsLines(run_dir()).size()))
      << Slurp(launcher.log);
  EXPECT_NE(Slurp(launcher.log)
                .find("stopping on signal " + std::to_string(SIGUSR2) +
                      " after global step"),
            std::string::npos)
      << Slurp(launcher.log);
}

// The largest |difference| between two checkpoints' model weights.
double MaxWeightDifference(const std::string& a, const std::string& b) {
  policy::SafetensorsFile wa(a + "/model/model.safetensors");
  policy::SafetensorsFile wb(b + "/model/model.safetensors");
  EXPECT_EQ(wa.Names(), wb.Names());
  double max_diff = 0;
  for (const std::string& name : wa.Names()) {
    max_diff = std::max(
        max_diff, (wa.Get(name) - wb.Get(name)).abs().max().item<double>());
  }
  return max_diff;
}

TEST_F(DistributedRunTest, TwoLearnerRanksTrainLikeOneAndResumeOnOne) {
  // Episodes played by learner rank 0 itself (no rollout ranks), so both
  // runs see the same batches; SFT steps move the weights.
  const std::string one = WriteConfig(2, 0, 1, 1, 0, "one");
  const std::string two = WriteConfig(2, 0, 1, 2, 0, "two");
  LaunchEach({one, two});
  if (HasFatalFailure()) return;
  // Step 3 ends SFT, whose gradients are real; the GRPO steps after it
  // have zero advantages on this env (gradient norm ~1e-9), where AdamW's
  // normalisation turns float32 summation order into visible differences.
  const std::string a = dir_ + "/one/checkpoints/step_00000003";
  const std::string b = dir_ + "/two/checkpoints/step_00000003";
  // Same global batches, gradients summed in another order: float32
  // rounding apart after 3 AdamW steps of lr 1e-3 (measured: 4e-8).
  EXPECT_LT(MaxWeightDifference(a, b), 1e-6);
  // ZeRO-1: each rank's moments are half of the one-rank optimizer's.
  const auto one_rank = fs::file_size(a + "/optimizer.safetensors");
  const auto shard0 =
      fs::file_size(b + "/optimizer.shard-00000-of-00002.safetensors");
  const auto shard1 =
      fs::file_size(b + "/optimizer.shard-00001-of-00002.safetensors");
  EXPECT_NEAR(static_cast<double>(shard0) / one_rank, 0.5, 0.02);
  EXPECT_NEAR(static_cast<double>(shard1) / one_rank, 0.5, 0.02);
  // The two-rank run continues on one rank from its sharded checkpoint.
  EXPECT_TRUE(
      fs::exists(ResumeOnOneRank(two, "two") + "/optimizer_layout.json"));
}

// trainer.sharding zero3 in a run: two learner ranks shard the parameters,
// rank 0 keeps a whole model to play and checkpoint with, the checkpoint's
// model/ is the export, and the run resumes on one rank.
TEST_F(DistributedRunTest, Zero3LearnerRanksTrainLikeOneAndResumeOnOne) {
  const std::string one = WriteConfig(2, 0, 1, 1, 0, "one");
  const std::string two = WriteConfig(2, 0, 1, 2, 0, "two");
  json doc = json::parse(ReadFile(two));
  doc["trainer"]["sharding"] = "zero3";
  WriteFileAtomic(two, doc.dump(2));
  LaunchEach({one, two});
  if (HasFatalFailure()) return;
  const std::string a = dir_ + "/one/checkpoints/step_00000003";
  const std::string b = dir_ + "/two/checkpoints/step_00000003";
  // ZeRO-3 also sums the gradients per layer and micro-batch: float32
  // rounding apart, well inside the 1e-5.
  EXPECT_LT(MaxWeightDifference(a, b), 1e-5);
  EXPECT_TRUE(fs::exists(b + "/zero3_layout.json"));
  for (const char* shard : {"/zero3.shard-00000-of-00002.safetensors",
                            "/zero3.shard-00001-of-00002.safetensors"}) {
    // Parameters and both moments: 3/2 of the one-process moments file
    // (two moments of every parameter), up to padding and headers.
    EXPECT_NEAR(static_cast<double>(fs::file_size(b + shard)) /
                    fs::file_size(a + "/optimizer.safetensors"),
                0.75, 0.03)
        << shard;
  }
  const std::string latest = ResumeOnOneRank(two, "two");
  EXPECT_TRUE(fs::exists(latest + "/zero3.shard-00000-of-00001.safetensors"))
      << latest;
}

TEST_F(DistributedRunTest, WrongRoleOrIndexIsRefusedWithTheField) {
  const std::string config = WriteConfig(1, 1, 0);
  Child bad_role = Start(config, "trainer", 0);
  EXPECT_EQ(WaitExit(bad_role, 20), 2);
  EXPECT_NE(Slurp(bad_role.log).find("--role: got 'trainer'"),
            std::string::npos)
      << Slurp(bad_role.log);
  Child bad_index = Start(config, "rollout", 3);
  EXPECT_EQ(WaitExit(bad_index, 20), 2);
  EXPECT_NE(Slurp(bad_index.log).find("--index: got 3"), std::string::npos)
      << Slurp(bad_index.log);
}

}  // namespace
}  // namespace clinrl
