#include "trainer/training_run.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "envs/env_registry.h"
#include "envs/env_server.h"
#include "policy/model_dir.h"
#include "policy/safetensors.h"
#include "rewards/reward_server.h"
#include "trainer/checkpoint.h"
#include "trainer/non_finite.h"

namespace clinrl::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

ClinrlConfig SmallConfig(const std::string& name) {
  const json doc = {
      {"run",
       {{"name", name},
        {"out_dir", ::testing::TempDir() + "/runs"},
        {"seed", 3},
        {"threads", 1}}},
      {"policy",
       {{"init",
         {{"hidden_size", 32},
          {"intermediate_size", 64},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"max_position_embeddings", 2048}}},
        {"tokenizer", "byte"}}},
      {"envs",
       json::array({{{"name", "echo"}, {"options", {{"max_turns", 2}}}}})},
      {"rollout",
       {{"group_size", 4},
        {"tasks_per_step", 2},
        {"max_turns", 2},
        {"max_tokens_per_turn", 6}}},
      {"trainer",
       {{"stages", {"sft", "grpo"}},
        {"steps", 4},
        {"lr", 1e-3},
        {"micro_batch", 3},
        {"checkpoint_every", 2},
        {"eval_every", 0},
        {"kl_coef", 0.01},
        {"sft",
         {{"demo_episodes", 16},
          {"steps", 3},
          {"batch_size", 4},
          {"eval_every", 0}}}}},
      {"eval", {{"validation_episodes", 2}, {"test_episodes", 2}}}};
  auto c = config::ReadConfig<ClinrlConfig>(doc, {});
  fs::remove_all(c.run.out_dir + "/" + name);
  return c;
}

TrainingRunOptions Quiet() {
  TrainingRunOptions o;
  o.final_eval = false;
  o.baselines = false;
  return o;
}

std::string FinalWeights(const std::string& name) {
  const std::string dir =
      LatestCheckpoint(::testing::TempDir() + "/runs/" + name + "/checkpoints");
  EXPECT_FALSE(dir.empty());
  return ReadFile(dir + "/model/model.safetensors");
}

// Runs `prefix`_straight uninterrupted, and `prefix`_interrupted killed
// after step 5 (mid-GRPO, last checkpoint at step 4) then resumed; both must
// end with the same bytes of weights and one metrics line per step.
void ExpectResumeEndsTheSame(const std::string& prefix,
                             const std::function<void(ClinrlConfig&)>& tweak) {
  const std::string straight = prefix + "straight";
  const std::string interrupted = prefix + "interrupted";
  {
    ClinrlConfig c = SmallConfig(straight);
    tweak(c);
    TrainingRun run(c, Quiet());
    run.Run();
  }
  {
    ClinrlConfig c = SmallConfig(interrupted);
    tweak(c);
    TrainingRunOptions o = Quiet();
    o.stop_after = 5;
    TrainingRun run(c, o);
    run.Run();
  }
  {
    ClinrlConfig c = SmallConfig(prefix + "resumed_probe");
    tweak(c);
    c.run.name = interrupted;  // same run directory, not wiped
    TrainingRunOptions o = Quiet();
    o.resume = true;
    TrainingRun run(c, o);
    run.Run();
  }
  const std::string a = FinalWeights(straight);
  const std::string b = FinalWeights(interrupted);
  EXPECT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "resumed weights differ from the uninterrupted run";
  // Every step wrote one metrics line. The resumed run replayed step 5 (its
  // checkpoint was step 4): the lost run's line of it was dropped, so each
  // step is there once, as in the uninterrupted run.
  for (const std::string& name : {straight, interrupted}) {
    std::vector<int64_t> steps;
    ReadJsonl(::testing::TempDir() + "/runs/" + name + "/metrics.jsonl",
              [&](const json& j, int64_t) {
                if (j.contains("stage")) steps.push_back(j["step"]);
              });
    EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7})) << name;
  }
  EXPECT_TRUE(
      fs::exists(::testing::TempDir() + "/runs/" + straight + "/config.json"));
}

TEST(TrainingRunTest, ResumedRunEndsWithTheSameWeights) {
  ExpectResumeEndsTheSame("", [](ClinrlConfig&) {});
}

// bf16 autocast and packed micro-batches keep resume bit-exact: the master
// weights and moments are float32 and saved as such, and the casts are
// recomputed from them.
// DAPO's refill: a step whose groups carry no signal plays more (bounded by
// max_refill_rounds), with RLOO advantages, the CISPO loss and the KL in the
// reward; the run still resumes bit-exactly (each round's seed derives from
// the step's; the reference is checkpointed).
TEST(TrainingRunTest, DynamicSamplingRefillsAndResumesBitExactly) {
  const auto tweak = [](ClinrlConfig& c) {
    c.trainer.dynamic_sampling = true;
    c.trainer.max_refill_rounds = 2;
    c.trainer.advantage = "rloo";
    c.trainer.policy_loss = "cispo";
    c.trainer.kl_in_reward = 0.05;
  };
  ExpectResumeEndsTheSame("dapo_", tweak);
  int64_t grpo_steps = 0, refilled = 0;
  ReadJsonl(::testing::TempDir() + "/runs/dapo_straight/metrics.jsonl",
            [&](const json& j, int64_t) {
              if (j.value("stage", "") != "grpo") return;
              ++grpo_steps;
              const double rounds = j.at("groups/play_rounds");
              const double informative = j.at("groups/informative");
              EXPECT_GE(rounds, 1);
              EXPECT_LE(rounds, 3);       // 1 + max_refill_rounds
              EXPECT_LE(informative, 2);  // never past tasks_per_step
              // Short of a full batch only when the rounds ran out.
              if (informative < 2) EXPECT_EQ(rounds, 3);
              if (rounds > 1) ++refilled;
            });
  EXPECT_EQ(grpo_steps, 4);
  EXPECT_GT(refilled, 0) << "no step refilled: the test exercises nothing";
  // The KL penalty is a reward component of every GRPO episode, in the
  // total with its weight.
  int64_t penalised = 0;
  ReadJsonl(
      ::testing::TempDir() + "/runs/dapo_straight/trajectories.jsonl",
      [&](const json& j, int64_t) {
        if (j.value("split", "") != "train") return;
        const json& components = j.at("reward").at("components");
        if (!components.contains("kl_penalty")) return;
        ++penalised;
        double total = 0;
        for (const auto& [name, c] : components.items()) {
          total += c.at("weight").get<double>() * c.at("score").get<double>();
        }
        EXPECT_NEAR(j.at("reward").at("total").get<double>(), total, 1e-9);
        EXPECT_EQ(components["kl_penalty"].at("weight"), 0.05);
      });
  EXPECT_GT(penalised, 0);
}

TEST(TrainingRunTest, Bf16PackedRunResumesBitExactly) {
  ExpectResumeEndsTheSame("bf16_", [](ClinrlConfig& c) {
    c.trainer.precision = "bf16";
    c.trainer.packing = true;
  });
  // The run really trained in bf16: the learner measured the sampling
  // mismatch and recomputed the ratio's denominator.
  bool saw_grpo = false;
  ReadJsonl(::testing::TempDir() + "/runs/bf16_straight/metrics.jsonl",
            [&](const json& j, int64_t) {
              if (j.value("stage", "") != "grpo") return;
              saw_grpo = true;
              EXPECT_EQ(j.at("train/recomputed_old_logprobs"), 1.0) << j;
              EXPECT_TRUE(j.contains("mismatch/logprob_abs_diff_mean")) << j;
            });
  EXPECT_TRUE(saw_grpo);
}

// LoRA through a whole run, SFT and GRPO with the KL reference: only the
// adapters change (the base in model/ stays the step-2 bytes), and a killed
// run resumes to the same adapter bytes (checkpoints' adapter/ folders).
TEST(TrainingRunTest, LoraRunTrainsOnlyAdaptersAndResumesBitExactly) {
  const auto lora = [](ClinrlConfig& c) {
    c.policy.lora.rank = 4;
    c.policy.lora.target_modules = {"q_proj",   "k_proj",    "v_proj",
                                    "o_proj",   "gate_proj", "up_proj",
                                    "down_proj"};
  };
  ExpectResumeEndsTheSame("lora_", lora);
  const std::string last = LatestCheckpoint(::testing::TempDir() +
                                            "/runs/lora_straight/checkpoints");
  const std::string resumed = LatestCheckpoint(
      ::testing::TempDir() + "/runs/lora_interrupted/checkpoints");
  const std::string adapter = "/adapter/adapter_model.safetensors";
  EXPECT_TRUE(ReadFile(last + adapter) == ReadFile(resumed + adapter))
      << "resumed adapters differ from the uninterrupted run's";
  // The base after SFT and GRPO is the initialisation, bit for bit.
  ClinrlConfig c = SmallConfig("lora_probe");
  lora(c);
  policy::PolicyModel initial =
      policy::LoadPolicy(c.policy, static_cast<uint64_t>(c.run.seed));
  const policy::CheckpointReader base(last + "/model");
  int64_t compared = 0;
  for (const auto& p : initial.model->named_parameters()) {
    if (policy::IsLoraParameter(p.key())) continue;
    EXPECT_TRUE(torch::equal(base.Get(p.key()), p.value())) << p.key();
    ++compared;
  }
  EXPECT_GT(compared, 0);
  // The adapters trained: some B is no longer zero.
  policy::SafetensorsFile file(last + adapter);
  double b_norm = 0;
  for (const std::string& name : file.Names()) {
    if (name.find("lora_B") != std::string::npos) {
      b_norm += file.Get(name).abs().sum().item<double>();
    }
  }
  EXPECT_GT(b_norm, 0);
}

// A hand-started env server that dies mid-run: the episodes in flight fail
// when its connection drops, and the step stops the run naming the server
// instead of training on env_error episodes (docs/training.md, faults).
TEST(TrainingRunTest, LostEnvServerStopsTheRunNamingIt) {
  const std::string endpoint =
      "ipc://" + ::testing::TempDir() + "/lost-env-server.sock";
  envs::EnvServerOptions server_options;
  server_options.endpoint = endpoint;
  server_options.service.envs = {"echo"};
  server_options.service.env_options["echo"] = {{"max_turns", 2}};
  auto server = std::make_unique<envs::EnvServer>(server_options);
  server->Start();
  ClinrlConfig c = SmallConfig("lost_env_server");
  c.envs.front().endpoint = endpoint;
  c.envs.front().options = json::object();
  c.trainer.stages = {"grpo"};
  TrainingRunOptions o = Quiet();
  std::chrono::steady_clock::time_point stopped;
  o.after_step = [&](int64_t step) {
    if (step == 2) {
      server->Stop();
      stopped = std::chrono::steady_clock::now();
    }
  };
  try {
    TrainingRun(c, o).Run();
    ADD_FAILURE() << "the run went on without its env server";
  } catch (const IoError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("grpo step 3: 8 of 8 episodes ended env_error"),
              std::string::npos)
        << message;
    EXPECT_NE(
        message.find("the env server at " + endpoint + " (role env_server)"),
        std::string::npos)
        << message;
    EXPECT_NE(message.find("trainer.max_env_error_fraction"),
              std::string::npos);
  }
  // Within a bound far below the env client's request timeout (60 s).
  EXPECT_LT(std::chrono::steady_clock::now() - stopped,
            std::chrono::seconds(5));
  // Steps 1 and 2 were logged; step 3 trained on nothing and logged nothing.
  int64_t logged = 0;
  ReadJsonl(::testing::TempDir() + "/runs/lost_env_server/metrics.jsonl",
            [&](const json& j, int64_t) { logged += j.contains("stage"); });
  EXPECT_EQ(logged, 2);
}

// The reward server dies mid-run: the step's scoring fails at once naming
// it, not after the client's 30 s timeout, and the run stops.
TEST(TrainingRunTest, LostRewardServerStopsTheRunNamingIt) {
  const std::string endpoint =
      "ipc://" + ::testing::TempDir() + "/lost-reward-server.sock";
  auto server = std::make_unique<rewards::RewardServer>(
      rewards::RewardServerOptions{endpoint, 1, 5000});
  ClinrlConfig c = SmallConfig("lost_reward_server");
  c.trainer.stages = {"grpo"};
  c.rewards.endpoint = endpoint;
  TrainingRunOptions o = Quiet();
  std::chrono::steady_clock::time_point stopped;
  o.after_step = [&](int64_t step) {
    if (step == 1) {
      server->Stop();
      stopped = std::chrono::steady_clock::now();
    }
  };
  try {
    TrainingRun(c, o).Run();
    ADD_FAILURE() << "the run went on without its reward server";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("the reward server at " + endpoint +
                                         " (role reward_server)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - stopped,
            std::chrono::seconds(5));
}

// --resume-from picks an older checkpoint: the run continues from it and
// ends as the uninterrupted run does; the newer checkpoints are moved aside,
// not deleted, and a wrong folder is an error naming the flag.
TEST(TrainingRunTest, ResumeFromAnOlderCheckpointEndsTheSame) {
  TrainingRun(SmallConfig("from_straight"), Quiet()).Run();
  TrainingRun(SmallConfig("from_older"), Quiet()).Run();
  const std::string checkpoints =
      ::testing::TempDir() + "/runs/from_older/checkpoints";
  const std::string older = checkpoints + "/step_00000004";
  ASSERT_TRUE(fs::exists(older));
  ClinrlConfig c = SmallConfig("from_older_probe");
  c.run.name = "from_older";
  TrainingRunOptions o = Quiet();
  o.resume_from = "/elsewhere/step_00000004";
  EXPECT_THROW(TrainingRun(c, o), ConfigError);
  o.resume_from = older + "/";  // as a shell's completion writes it
  TrainingRun(c, o).Run();
  EXPECT_TRUE(
      fs::exists(checkpoints + "/abandoned_after_step_4/step_00000007"));
  const std::string a = FinalWeights("from_straight");
  const std::string b = FinalWeights("from_older");
  EXPECT_TRUE(a == b) << "resumed weights differ from the uninterrupted run";
}

TEST(TrainingRunTest, CorruptedCheckpointIsRefusedOnResume) {
  {
    TrainingRunOptions o = Quiet();
    o.stop_after = 4;
    TrainingRun run(SmallConfig("corrupt"), o);
    run.Run();
  }
  const std::string root = ::testing::TempDir() + "/runs/corrupt/checkpoints";
  // Every checkpoint bad: --resume has nothing older to fall back to.
  const std::vector<std::string> all = ListCheckpoints(root);
  ASSERT_EQ(all.size(), 3u);
  for (const std::string& ckpt : all) {
    std::fstream f(ckpt + "/model/model.safetensors",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  ClinrlConfig c = SmallConfig("corrupt_probe");
  c.run.name = "corrupt";
  TrainingRunOptions o = Quiet();
  o.resume = true;
  try {
    TrainingRun run(c, o);
    FAIL() << "a corrupted checkpoint was loaded";
  } catch (const IoError& e) {
    for (const std::string& ckpt : all) {
      EXPECT_NE(std::string(e.what()).find(ckpt + ": file "
                                                  "model/model.safetensors"),
                std::string::npos)
          << e.what();
    }
  }
}

// GRPO at lr 1e30 with a checkpoint every step (the operator's report: NaN
// trained and saved, exit 0). The entropy bonus gives step 1 a gradient
// whatever the rewards.
ClinrlConfig DivergingConfig(const std::string& name) {
  ClinrlConfig c = SmallConfig(name);
  c.trainer.stages = {"grpo"};
  c.trainer.steps = 3;
  c.trainer.lr = 1e30;
  c.trainer.kl_coef = 0;
  c.trainer.entropy_coef = 0.01;
  c.trainer.checkpoint_every = 1;
  return c;
}

void ExpectFiniteCheckpoint(const std::string& dir) {
  ASSERT_FALSE(dir.empty());
  policy::SafetensorsFile file(dir + "/model/model.safetensors");
  ASSERT_FALSE(file.Names().empty());
  for (const auto& name : file.Names()) {
    EXPECT_TRUE(torch::isfinite(file.Get(name)).all().item<bool>())
        << name << " in " << dir;
  }
}

TEST(TrainingRunTest, HugeLearningRateStopsTheRunNamingTheStep) {
  try {
    TrainingRun run(DivergingConfig("diverging_stop"), Quiet());
    run.Run();
    FAIL() << "the run trained on non-finite values to the end";
  } catch (const NonFiniteError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("grpo step ", 0), 0u) << m;
    EXPECT_NE(m.find("trainer.non_finite"), std::string::npos) << m;
  }
  const std::string root =
      ::testing::TempDir() + "/runs/diverging_stop/checkpoints";
  ExpectFiniteCheckpoint(LatestCheckpoint(root));
}

TEST(TrainingRunTest, SkippedNonFiniteStepsAreCountedAndNeverSaved) {
  ClinrlConfig c = DivergingConfig("diverging_skip");
  c.trainer.non_finite = "skip";
  {
    TrainingRun run(c, Quiet());
    run.Run();
  }
  const std::string dir = ::testing::TempDir() + "/runs/diverging_skip";
  double skipped = 0;
  ReadJsonl(dir + "/metrics.jsonl", [&](const json& j, int64_t) {
    const json* v = j.contains("train/non_finite_skipped")
                        ? &j["train/non_finite_skipped"]
                        : nullptr;
    if (v && v->is_number()) skipped += v->get<double>();
  });
  EXPECT_GE(skipped, 1.0) << "no step of lr 1e30 was skipped";
  for (const std::string& ckpt : ListCheckpoints(dir + "/checkpoints")) {
    ExpectFiniteCheckpoint(ckpt);
  }
}

TEST(TrainingRunTest, TableStatesWhatGrpoChangedOverSft) {
  const std::vector<EvalResult> rows = {
      {"random", "test", {{"accuracy", 0.02}, {"reward/mean", 0.03}}},
      {"sft", "test", {{"accuracy", 0.575}, {"reward/mean", 0.650}}},
      {"grpo", "test", {{"accuracy", 0.700}, {"reward/mean", 0.790}}}};
  const std::string table = TrainingRun::FormatTable(rows);
  EXPECT_NE(table.find("grpo - sft: accuracy +12.5 points, mean reward +0.140"),
            std::string::npos)
      << table;
  const std::string without = TrainingRun::FormatTable({rows[0], rows[1]});
  EXPECT_EQ(without.find("grpo - sft"), std::string::npos) << without;
}

// The echo env under another name, with no scripted policies: what a new
// C++ env looks like before anyone writes an oracle for it.
class BareEchoEnv : public envs::Env {
 public:
  explicit BareEchoEnv(std::unique_ptr<envs::Env> echo)
      : echo_(std::move(echo)) {}
  envs::EnvSpec Spec() const override {
    envs::EnvSpec spec = echo_->Spec();
    spec.name = "bare_echo";
    return spec;
  }
  envs::ResetResult Reset(const envs::ResetRequest& request) override {
    return echo_->Reset(request);
  }
  envs::StepResult Step(const std::string& action) override {
    return echo_->Step(action);
  }
  envs::StepResult Truncate() override { return echo_->Truncate(); }

 private:
  std::unique_ptr<envs::Env> echo_;
};

CLINRL_REGISTER_ENV(bare_echo, [](const json& options,
                                  const std::string& path) {
  return std::make_unique<BareEchoEnv>(
      envs::EnvRegistry::Global().Create("echo", options, path));
});

TEST(TrainingRunTest, FinalTableSkipsBaselinesTheEnvLacks) {
  ClinrlConfig c = SmallConfig("bare_env");
  c.envs.front().name = "bare_echo";
  c.trainer.stages = {"grpo"};
  c.trainer.steps = 1;
  TrainingRunOptions o;  // the final table with its baseline rows
  const std::vector<EvalResult> table = TrainingRun(c, o).Run();
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[0].label, "grpo");
  const json summary = json::parse(
      ReadFile(::testing::TempDir() + "/runs/bare_env/summary.json"));
  ASSERT_EQ(summary.size(), 1u) << summary;
  EXPECT_EQ(summary[0]["policy"], "grpo");
}

TEST(TrainingRunTest, SftDemosFromAPolicyTheEnvLacksIsAConfigError) {
  ClinrlConfig c = SmallConfig("bare_env_sft");
  c.envs.front().name = "bare_echo";
  try {
    TrainingRun(c, Quiet()).Run();
    ADD_FAILURE() << "SFT started without a demonstration policy";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "trainer.sft.demo_policy: env 'bare_echo' has no scripted "
                 "policy 'oracle' (its policies: (none)); set "
                 "trainer.sft.demos to a demonstrations JSONL or leave the "
                 "sft stage out of trainer.stages");
  }
}

TEST(TrainingRunTest, DemonstrationsOfAnotherEnvAreRefusedNamingBoth) {
  const std::string demos = ::testing::TempDir() + "/other_env_demos.jsonl";
  {
    Trajectory t;
    t.episode_id = "dx-0";
    t.env = "dx_dialogue";
    t.turns = {{"user", "Where does it hurt?", {}, {}}};
    fs::remove(demos);
    JsonlWriter writer(demos);
    writer.Write(ToJson(t));
  }
  ClinrlConfig c = SmallConfig("other_env_demos");
  c.trainer.sft.demos = demos;
  try {
    TrainingRun(c, Quiet()).Run();
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("trainer.sft.demos: "), std::string::npos) << what;
    EXPECT_NE(what.find("line 1 is an episode of env 'dx_dialogue', expected "
                        "the run's env 'echo'"),
              std::string::npos)
        << what;
  }
}

TEST(TrainingRunTest, ResumeWithAChangedSeedIsRefusedAndChangesNothing) {
  {
    TrainingRunOptions o = Quiet();
    o.stop_after = 2;
    TrainingRun(SmallConfig("changed_seed"), o).Run();
  }
  const std::string root = ::testing::TempDir() + "/runs/changed_seed";
  const std::string started = ReadFile(root + "/config.json");
  ClinrlConfig c = SmallConfig("changed_seed_probe");
  c.run.name = "changed_seed";
  c.run.seed = 4;
  TrainingRunOptions o = Quiet();
  o.resume = true;
  try {
    TrainingRun run(c, o);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("run.seed (3 -> 4)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(ReadFile(root + "/config.json"), started);
}

TEST(TrainingRunTest, TableNeverPrintsNan) {
  // An env without a `correct` metric has no accuracy; a failed figure may
  // be NaN. Neither may read as "nan" in the table a reviewer sees.
  const std::vector<EvalResult> rows = {
      {"sft", "test", {{"reward/mean", 0.5}, {"turns/mean", 2.0}}},
      {"grpo",
       "test",
       {{"accuracy", std::nan("")}, {"reward/mean", 0.75}, {"cost/mean", 3}}}};
  const std::string table = TrainingRun::FormatTable(rows);
  EXPECT_EQ(table.find("nan"), std::string::npos) << table;
  EXPECT_NE(table.find("sft        test                -        0.500"),
            std::string::npos)
      << table;
  EXPECT_EQ(table.find("grpo - sft"), std::string::npos) << table;
}

TEST(TrainingRunTest, RewardsEndpointScoresThroughTheRewardServer) {
  rewards::RewardServer server({"inproc://training-run-rewards", 1, 5000});
  ClinrlConfig c = SmallConfig("reward_server");
  c.trainer.stages = {"grpo"};
  c.rewards.endpoint = server.endpoint();
  TrainingRun(c, Quiet()).Run();
  // Every GRPO episode (steps x tasks x group), and nothing else, went to
  // the server: no validation with eval_every 0 and no final evaluation.
  const int64_t episodes =
      c.trainer.steps * c.rollout.tasks_per_step * c.rollout.group_size;
  EXPECT_EQ(server.stats().scored.load(), episodes);
  int64_t logged = 0;
  ReadJsonl(::testing::TempDir() + "/runs/reward_server/metrics.jsonl",
            [&](const json& j, int64_t) {
              if (j.value("stage", "") == "grpo") {
                ++logged;
                EXPECT_EQ(j.at("flagged").get<double>(), 0.0) << j;
              }
            });
  EXPECT_EQ(logged, c.trainer.steps);
}

TEST(TrainingRunTest, BadEnvMixturesAreConfigErrorsNamingTheEntry) {
  const auto expect = [](const std::function<void(ClinrlConfig&)>& tweak,
                         const std::string& want) {
    ClinrlConfig c = SmallConfig("bad_mixture");
    tweak(c);
    try {
      TrainingRun run(c, Quiet());
      FAIL() << "expected a ConfigError: " << want;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos)
          << e.what();
    }
  };
  expect([](ClinrlConfig& c) { c.envs.push_back(c.envs.front()); },
         "envs.1: env 'echo' is already envs.0");
  expect([](ClinrlConfig& c) { c.envs.front().weight = 0; },
         "envs: the weights sum to 0");
  expect(
      [](ClinrlConfig& c) {
        c.trainer.credit = "turn";
        c.trainer.reward_normalization = "per_component";
      },
      "trainer.credit: 'turn'");
}

// Two envs in one run: tasks drawn by weight (seeded), per-env training and
// evaluation figures, and the run resumes bit-exactly.
TEST(TrainingRunTest, EnvMixtureTrainsAndEvaluatesEachEnv) {
  const auto mix = [](ClinrlConfig& c) {
    EnvEntry dx;
    dx.name = "dx_dialogue";
    dx.weight = 3.0;
    dx.options = {{"max_turns", 2}};
    c.envs.push_back(dx);
    c.rollout.tasks_per_step = 8;
    c.trainer.eval_every = 2;
  };
  ExpectResumeEndsTheSame("mixture_", mix);
  const std::string dir = ::testing::TempDir() + "/runs/mixture_straight";
  std::map<std::string, int64_t> train_episodes;
  ReadJsonl(dir + "/trajectories.jsonl", [&](const json& j, int64_t) {
    if (j.value("split", "") == "train" && !j.contains("eval")) {
      ++train_episodes[j.at("env")];
    }
  });
  // 4 GRPO steps x 8 tasks x 4 episodes; dx_dialogue 3 times as likely.
  EXPECT_EQ(train_episodes["echo"] + train_episodes["dx_dialogue"], 128);
  EXPECT_GT(train_episodes["dx_dialogue"], 2 * train_episodes["echo"]);
  EXPECT_GT(train_episodes["echo"], 0);
  bool per_env_step = false, per_env_eval = false;
  ReadJsonl(dir + "/metrics.jsonl", [&](const json& j, int64_t) {
    const bool eval = j.contains("eval");
    if (j.contains("env/echo/reward/mean") &&
        j.contains("env/dx_dialogue/reward/mean")) {
      (eval ? per_env_eval : per_env_step) = true;
    }
  });
  EXPECT_TRUE(per_env_step);
  EXPECT_TRUE(per_env_eval);
}

TEST(TrainingRunTest, BadStageAndVocabAreConfigErrors) {
  ClinrlConfig c = SmallConfig("bad_stage");
  c.trainer.stages = {"sft", "ppo"};
  EXPECT_THROW(TrainingRun(c, Quiet()), ConfigError);
  ClinrlConfig v = SmallConfig("bad_vocab");
  v.policy.init["vocab_size"] = 100;
  EXPECT_THROW(TrainingRun(v, Quiet()), ConfigError);
}

// Collects what is logged while in scope (--resume's warnings).
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::sink> sink_;
};

// The newest checkpoint corrupted: --resume warns, falls back to the one
// before (the end of SFT) and still ends bit-equal to the uninterrupted run.
// A crash's temporary folder goes when a run starts and after a checkpoint.
TEST(TrainingRunTest, CorruptedNewestCheckpointFallsBackToThePreviousOne) {
  const std::string runs = ::testing::TempDir() + "/runs";
  {
    const std::string stale =
        runs + "/fallback_straight/checkpoints/step_00000099.tmp-123";
    TrainingRunOptions o = Quiet();
    o.after_step = [&](int64_t step) {
      if (step == 1) MakeDirectories(stale + "/model");
      if (step == 2) {
        EXPECT_FALSE(fs::exists(stale)) << "kept after the step 2 checkpoint";
      }
    };
    TrainingRun(SmallConfig("fallback_straight"), o).Run();
  }
  {
    TrainingRunOptions o = Quiet();
    o.stop_after = 5;  // checkpoints of steps 2, 3 (end of SFT) and 4
    TrainingRun(SmallConfig("fallback"), o).Run();
  }
  const std::string root = runs + "/fallback/checkpoints";
  ASSERT_EQ(ListCheckpoints(root).size(), 3u);
  const std::string newest = LatestCheckpoint(root);
  {
    std::fstream f(newest + "/model/model.safetensors",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  const std::string stale = root + "/step_00000005.tmp-123";
  MakeDirectories(stale + "/model");  // a crash mid-write
  LogCapture log;
  {
    ClinrlConfig c = SmallConfig("fallback_probe");
    c.run.name = "fallback";
    TrainingRunOptions o = Quiet();
    o.resume = true;
    TrainingRun run(c, o);
    EXPECT_FALSE(fs::exists(stale)) << "kept at the run's start";
    run.Run();
  }
  EXPECT_NE(log.str().find("--resume: skipping checkpoint " + newest +
                           ": file model/model.safetensors fails its CRC-32C"),
            std::string::npos)
      << log.str();
  EXPECT_NE(log.str().find("resumed from " + root + "/step_00000003 "),
            std::string::npos)
      << log.str();
  const std::string a = FinalWeights("fallback_straight");
  const std::string b = FinalWeights("fallback");
  EXPECT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "resumed weights differ from the uninterrupted run";
}

// A checkpoint whose manifest.json was deleted is refused with a warning
// naming it, not passed over silently; the one before is resumed.
TEST(TrainingRunTest, CheckpointWithoutManifestIsSkippedWithAWarning) {
  {
    TrainingRunOptions o = Quiet();
    o.stop_after = 4;
    TrainingRun(SmallConfig("no_manifest"), o).Run();
  }
  const std::string dir = ::testing::TempDir() + "/runs/no_manifest";
  const std::string newest = LatestCheckpoint(dir + "/checkpoints");
  ASSERT_EQ(newest, dir + "/checkpoints/step_00000004");
  fs::remove(newest + "/manifest.json");
  LogCapture log;
  {
    ClinrlConfig c = SmallConfig("no_manifest_probe");
    c.run.name = "no_manifest";
    TrainingRunOptions o = Quiet();
    o.resume = true;
    o.stop_after = 4;
    TrainingRun(c, o).Run();
  }
  EXPECT_NE(log.str().find("--resume: skipping checkpoint " + newest +
                           ": no manifest.json"),
            std::string::npos)
      << log.str();
  // Resumed from step 3, the run did step 4 again, and only it; the lost
  // run's line of step 4 was dropped, so each step is logged once.
  std::map<int64_t, int> logged;
  ReadJsonl(dir + "/metrics.jsonl", [&](const json& j, int64_t) {
    if (j.contains("stage")) ++logged[j.at("step").get<int64_t>()];
  });
  EXPECT_EQ(logged, (std::map<int64_t, int>{{1, 1}, {2, 1}, {3, 1}, {4, 1}}));
  EXPECT_NE(log.str().find("--resume: dropped 1 line of steps after 3 from " +
                           dir + "/metrics.jsonl"),
            std::string::npos)
      << log.str();
  EXPECT_NO_THROW(OpenCheckpoint(newest));
}

}  // namespace
}  // namespace clinrl::trainer
