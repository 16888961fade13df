#include "trainer/training_run.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/config_schema.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "core/monotonic_clock.h"
#include "core/seeds.h"
#include "envs/env_client.h"
#include "envs/env_pool.h"
#include "policy/model_dir.h"
#include "policy/safetensors.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"
#include "rewards/composite_reward.h"
#include "rewards/plugin_loader.h"
#include "rollout/episode_tokens.h"
#include "rollout/rollout_worker.h"
#include "rollout/scripted_baselines.h"
#include "trainer/checkpoint.h"
#include "trainer/episode_source.h"
#include "trainer/episode_summary.h"
#include "trainer/group_advantages.h"
#include "trainer/learner_group.h"
#include "trainer/metrics_logger.h"
#include "trainer/non_finite.h"
#include "trainer/policy_trainer.h"
#include "trainer/tfevents_writer.h"

namespace clinrl::trainer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

uint64_t DeriveSeed(int64_t run_seed, const std::string& stage, int64_t step) {
  return clinrl::DeriveSeed(static_cast<uint64_t>(run_seed), stage,
                            static_cast<uint64_t>(step));
}

void ValidateStages(const std::vector<std::string>& stages) {
  if (stages.empty()) {
    throw ConfigError("trainer.stages: expected at least one of: sft, grpo");
  }
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i] != "sft" && stages[i] != "grpo") {
      throw ConfigError(
          fmt::format("trainer.stages.{}: got '{}', expected one of: sft, grpo",
                      i, stages[i]));
    }
  }
}

std::vector<const Trajectory*> Pointers(const std::vector<Trajectory>& ts) {
  std::vector<const Trajectory*> out;
  for (const auto& t : ts) out.push_back(&t);
  return out;
}

TrainSequence ToSequence(const rollout::EpisodeTokens& tokens, double advantage,
                         int64_t version) {
  TrainSequence s;
  s.ids = tokens.ids;
  s.loss_mask = tokens.loss_mask;
  s.rollout_logprobs = tokens.logprobs;
  s.advantage = advantage;
  s.policy_version = version;
  return s;
}

}  // namespace

struct TrainingRun::State {
  ClinrlConfig config;
  TrainingRunOptions options;
  RunDir run_dir;
  std::unique_ptr<policy::Tokenizer> tokenizer;
  policy::Transformer model{nullptr};
  policy::Transformer reference{nullptr};
  std::unique_ptr<envs::EnvPool> pool;
  std::unique_ptr<envs::EnvClient> remote_client;
  envs::EnvClient* client = nullptr;
  std::unique_ptr<MetricsLogger> metrics;
  std::unique_ptr<TfEventsWriter> events;
  std::unique_ptr<JsonlWriter> trajectories;
  std::unique_ptr<PolicyTrainer> trainer;
  // GRPO episodes from rollout workers elsewhere; null = played here.
  std::unique_ptr<EpisodeSource> remote_episodes;
  // Several learner ranks: rank 0's command channel to the others.
  std::unique_ptr<LearnerGroup> learners;
  // One learner continuing a data-parallel run's sharded optimizer.
  std::unique_ptr<distributed::Communicator> single_rank;
  std::string env_name;
  json env_options = json::object();
  int64_t train_tasks = 0;
  // "validation" when the env has that split; otherwise the train split
  // (never the test split, which stays held out).
  std::string validation_split = "validation";

  // Progress, saved in checkpoints.
  size_t stage_index = 0;
  int64_t stage_step = 0;
  int64_t global_step = 0;
  int64_t policy_version = 0;
  json evals = json::array();  // EvalResult rows recorded so far
  double best_sft_accuracy = -1;
  std::map<std::string, torch::Tensor> best_sft_weights;
};

TrainingRun::TrainingRun(ClinrlConfig config, TrainingRunOptions options)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.config = std::move(config);
  s.options = options;
  ValidateStages(s.config.trainer.stages);
  if (s.config.envs.empty()) {
    throw ConfigError("envs: expected at least one env entry (name, options)");
  }
  policy::SetComputeThreads(s.config.run.threads);
  // Reward plug-ins from shared libraries register before any scoring.
  rewards::LoadRewardPlugins(s.config.rewards.plugins);
  s.run_dir = CreateRunDir(s.config);

  // Policy and tokenizer.
  if (!s.config.policy.model_dir.empty()) {
    policy::ModelLoadOptions load;
    load.dtype = s.config.policy.dtype;
    load.device = s.config.policy.device;
    s.model = policy::LoadModel(s.config.policy.model_dir, load);
    s.tokenizer = policy::LoadModelTokenizer(s.config.policy.model_dir);
  } else {
    if (!s.config.policy.init.is_object()) {
      throw ConfigError(
          "policy: expected either policy.model_dir or a policy.init object "
          "(a Hugging Face config.json)");
    }
    s.tokenizer = policy::LoadTokenizer(s.config.policy.tokenizer);
    // A fresh model's vocabulary is the tokenizer's: ids past it could be
    // sampled but never decoded.
    json init = s.config.policy.init;
    if (!init.contains("vocab_size")) init["vocab_size"] = s.tokenizer->size();
    const policy::ModelConfig mc =
        policy::ModelConfig::FromJson(init, "policy.init");
    if (mc.vocab_size != s.tokenizer->size()) {
      throw ConfigError(fmt::format(
          "policy.init.vocab_size: got {}, expected the tokenizer's {} ids "
          "(or leave it out)",
          mc.vocab_size, s.tokenizer->size()));
    }
    s.model = policy::Transformer(policy::TransformerOptions(mc));
    s.model->ResetParameters(static_cast<uint64_t>(s.config.run.seed));
  }
  if (s.options.episode_source) {
    s.remote_episodes = s.options.episode_source(*s.tokenizer);
  }
  if (s.options.learner_comm && s.options.learner_comm->size() > 1) {
    s.learners = std::make_unique<LearnerGroup>(*s.options.learner_comm);
  }

  // Envs: in-process pool, or a remote env server.
  const EnvEntry& env = s.config.envs.front();
  s.env_name = env.name;
  s.env_options = env.options;
  if (env.endpoint.empty()) {
    envs::EnvPoolOptions pool;
    for (const EnvEntry& e : s.config.envs) {
      pool.service.envs.push_back(e.name);
      pool.service.env_options[e.name] = e.options;
    }
    pool.workers = 2;
    s.pool = std::make_unique<envs::EnvPool>(pool);
    s.client = &s.pool->client();
  } else {
    envs::EnvClientOptions co;
    co.endpoint = env.endpoint;
    s.remote_client = std::make_unique<envs::EnvClient>(co);
    s.client = s.remote_client.get();
  }
  const envs::EnvSpec spec = s.client->Spec(s.env_name);
  auto train = spec.splits.find("train");
  if (train == spec.splits.end() || train->second <= 0) {
    throw ConfigError(
        fmt::format("envs.0: env '{}' has no train split", s.env_name));
  }
  s.train_tasks = train->second;
  if (!spec.splits.count("validation")) {
    CLINRL_LOG_WARN("env '{}' has no validation split; validating on train",
                    s.env_name);
    s.validation_split = "train";
  }

  s.metrics = std::make_unique<MetricsLogger>(s.run_dir.metrics_path());
  s.trajectories = std::make_unique<JsonlWriter>(s.run_dir.trajectories_path());
  s.events = std::make_unique<TfEventsWriter>(s.run_dir.root);
  s.events->AddText("config", config::WriteConfig(s.config).dump(2), 0);

  if (s.options.resume) {
    const std::string latest = LatestCheckpoint(s.run_dir.checkpoints());
    if (latest.empty()) {
      CLINRL_LOG_WARN("--resume: no checkpoint in {}; starting from scratch",
                      s.run_dir.checkpoints());
    } else {
      const CheckpointInfo info = OpenCheckpoint(latest);
      const json& st = info.state;
      policy::LoadWeights(s.model, policy::CheckpointReader(latest + "/model"));
      s.stage_index = st.at("stage_index").get<size_t>();
      s.stage_step = st.at("stage_step").get<int64_t>();
      s.global_step = st.at("global_step").get<int64_t>();
      s.policy_version = st.at("policy_version").get<int64_t>();
      s.evals = st.value("evals", json::array());
      s.best_sft_accuracy = st.value("best_sft_accuracy", -1.0);
      // The optimizer is restored when its stage's trainer is built.
      CLINRL_LOG_INFO("resumed from {} (stage {}, step {})", latest,
                      s.config.trainer.stages[s.stage_index], s.stage_step);
    }
  }
}

TrainingRun::~TrainingRun() = default;

const RunDir& TrainingRun::run_dir() const { return s_->run_dir; }

EvalResult TrainingRun::Evaluate(const std::string& label,
                                 const std::string& split, int64_t episodes) {
  State& s = *s_;
  torch::NoGradGuard no_grad;
  s.model->eval();
  rollout::RolloutOptions ro =
      rollout::RolloutOptionsFromConfig(s.config.rollout);
  ro.group_size = 1;
  ro.temperature = 0.0;  // greedy
  rollout::RolloutWorker worker(s.model, *s.tokenizer, *s.client, ro);
  const envs::EnvSpec spec = s.client->Spec(s.env_name);
  const int64_t available =
      spec.splits.count(split) ? spec.splits.at(split) : 0;
  if (available <= 0) {
    throw ConfigError(
        fmt::format("env '{}' has no '{}' split", s.env_name, split));
  }
  std::vector<rollout::TaskRef> tasks;
  for (int64_t i = 0; i < std::min(episodes, available); ++i) {
    tasks.push_back({s.env_name, split, i, json::object()});
  }
  std::vector<Trajectory> played;
  // Batches of 64 episodes bound the generation batch and the KV cache.
  for (size_t start = 0; start < tasks.size(); start += 64) {
    const std::vector<rollout::TaskRef> chunk(
        tasks.begin() + static_cast<long>(start),
        tasks.begin() + static_cast<long>(std::min(tasks.size(), start + 64)));
    for (auto& e : worker.Run(chunk, DeriveSeed(s.config.run.seed, "eval", 0),
                              s.policy_version)) {
      played.push_back(std::move(e.trajectory));
    }
  }
  for (Trajectory& t : played) {
    if (t.reward_spec.contains("components")) {
      t.reward = rewards::ScoreTrajectory(t, {s.config.rewards.timeout_ms});
    }
    // Every evaluation episode is kept, so that reviewers can read the
    // transcripts behind the validation and test figures.
    json line = ToJson(t);
    line["step"] = s.global_step;
    line["eval"] = label;
    s.trajectories->Write(line);
  }
  s.model->train();
  return {label, split, SummarizeEpisodes(Pointers(played))};
}

std::string TrainingRun::FormatTable(const std::vector<EvalResult>& rows) {
  std::string out = fmt::format("{:<10} {:<11} {:>9} {:>12} {:>11} {:>10}\n",
                                "policy", "split", "accuracy", "mean reward",
                                "mean turns", "mean cost");
  for (const EvalResult& r : rows) {
    auto get = [&](const char* k) {
      auto it = r.metrics.find(k);
      return it == r.metrics.end() ? NAN : it->second;
    };
    out += fmt::format("{:<10} {:<11} {:>9.3f} {:>12.3f} {:>11.2f} {:>10.1f}\n",
                       r.label, r.split, get("accuracy"), get("reward/mean"),
                       get("turns/mean"), get("cost/mean"));
  }
  // What GRPO changed over its SFT starting point, on the same test cases.
  const EvalResult* sft = nullptr;
  const EvalResult* grpo = nullptr;
  for (const EvalResult& r : rows) {
    if (r.label == "sft") sft = &r;
    if (r.label == "grpo") grpo = &r;
  }
  if (sft && grpo && sft->metrics.count("accuracy") &&
      grpo->metrics.count("accuracy") && sft->metrics.count("reward/mean") &&
      grpo->metrics.count("reward/mean")) {
    out += fmt::format(
        "grpo - sft: accuracy {:+.1f} points, mean reward {:+.3f}\n",
        100.0 * (grpo->metrics.at("accuracy") - sft->metrics.at("accuracy")),
        grpo->metrics.at("reward/mean") - sft->metrics.at("reward/mean"));
  }
  return out;
}

std::vector<EvalResult> TrainingRun::Run() {
  State& s = *s_;
  const TrainerConfig& tc = s.config.trainer;
  // The other learner ranks wait for rank 0's next command: tell them when
  // the run ends. (A failure instead ends the whole job: MPI_Abort.)
  struct FollowersDone {
    LearnerGroup* learners;
    ~FollowersDone() {
      if (!learners || std::uncaught_exceptions() > 0) return;
      try {
        learners->Done();
      } catch (const std::exception& e) {
        CLINRL_LOG_ERROR("telling the other learner ranks to stop: {}",
                         e.what());
      }
    }
  } followers_done{s.learners.get()};
  auto record_eval = [&](const EvalResult& r) {
    json row = {{"label", r.label},
                {"split", r.split},
                {"metrics", r.metrics},
                {"step", s.global_step}};
    s.evals.push_back(row);
    s.metrics->LogEval(s.global_step, r.split, r.metrics);
    std::map<std::string, double> tagged;
    for (const auto& [k, v] : r.metrics)
      tagged["eval/" + r.split + "/" + k] = v;
    s.events->AddScalars(tagged, s.global_step);
    s.events->Flush();
    CLINRL_LOG_INFO(
        "eval {} {}: accuracy {:.3f}, reward {:.3f}", r.label, r.split,
        r.metrics.count("accuracy") ? r.metrics.at("accuracy") : NAN,
        r.metrics.at("reward/mean"));
  };
  auto save_checkpoint = [&](const std::string& stage) {
    // The tensor files beside the model, gathered once: checked here, before
    // the other learner ranks start writing their shards, then written.
    using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;
    NamedTensors moments, ref;
    const bool write_moments = s.trainer && !s.trainer->sharded_optimizer();
    if (write_moments) {
      for (const auto& [k, v] : s.trainer->optimizer().StateTensors()) {
        moments.emplace_back(k, v);
      }
    }
    if (s.reference) {
      // The KL anchor is the policy as the GRPO stage found it; a resumed
      // run must not re-anchor to the weights it resumes.
      for (const auto& p : s.reference->named_parameters()) {
        ref.emplace_back(p.key(), p.value());
      }
    }
    const NamedTensors best(s.best_sft_weights.begin(),
                            s.best_sft_weights.end());
    // Everything the checkpoint stores must be finite.
    NamedTensors stored;
    for (const auto& p : s.model->named_parameters()) {
      stored.emplace_back(p.key(), p.value());
    }
    const std::pair<const char*, const NamedTensors*> groups[] = {
        {"optimizer.", &moments}, {"reference.", &ref}, {"best_sft.", &best}};
    for (const auto& [prefix, group] : groups) {
      for (const auto& [k, v] : *group) stored.emplace_back(prefix + k, v);
    }
    RequireFiniteCheckpoint(s.run_dir.checkpoints(), s.global_step, stored);
    json state = {
        {"stage_index", s.stage_index},
        {"stage", stage},
        {"stage_step", s.stage_step},
        {"global_step", s.global_step},
        {"policy_version", s.policy_version},
        {"optimizer_step", s.trainer ? s.trainer->optimizer_step() : 0},
        {"evals", s.evals},
        {"best_sft_accuracy", s.best_sft_accuracy}};
    const auto write_files = [&](const std::string& dir) {
      policy::SaveModel(s.model, dir + "/model");
      s.tokenizer->Save(dir + "/model");
      if (write_moments) {
        policy::SaveSafetensors(dir + "/optimizer.safetensors", moments);
      }
      if (s.reference) {
        policy::SaveSafetensors(dir + "/reference.safetensors", ref);
      }
      if (!best.empty()) {
        policy::SaveSafetensors(dir + "/best_sft.safetensors", best);
      }
    };
    if (s.trainer && s.trainer->sharded_optimizer()) {
      // Every learner rank writes its optimizer shard into the same step.
      if (s.learners) {
        s.learners->Checkpoint(s.run_dir.checkpoints(), s.global_step);
      }
      WriteShardedCheckpoint(
          s.learners ? s.learners->comm() : *s.single_rank,
          s.run_dir.checkpoints(), s.global_step, write_files,
          [&](const std::string& dir) {
            s.trainer->sharded_optimizer()->SaveShard(dir);
          },
          state);
    } else {
      WriteCheckpoint(s.run_dir.checkpoints(), s.global_step, write_files,
                      state);
    }
    PruneCheckpoints(s.run_dir.checkpoints(), tc.keep_checkpoints);
  };
  // The checkpoint a resumed stage continues from ("" = a fresh stage).
  auto stage_checkpoint = [&](const std::string& stage) -> std::string {
    if (!s.options.resume) return "";
    const std::string latest = LatestCheckpoint(s.run_dir.checkpoints());
    if (latest.empty()) return "";
    const CheckpointInfo info = OpenCheckpoint(latest);
    if (info.state.value("stage", "") != stage ||
        info.state.value("stage_index", size_t{0}) != s.stage_index) {
      return "";
    }
    return latest;
  };
  // Several learner ranks: the others build the stage's trainer from rank
  // 0's weights (and KL reference) and restore their optimizer shards.
  auto start_stage = [&](const std::string& stage, PolicyTrainerOptions* po) {
    if (!s.learners) {
      // One learner resuming the sharded optimizer of a data-parallel run:
      // ZeRO-1 over one rank reads every shard (the same AdamW arithmetic).
      const std::string from = stage_checkpoint(stage);
      if (!from.empty() && fs::exists(from + "/optimizer_layout.json")) {
        if (!s.single_rank) {
          s.single_rank = distributed::MakeSingleRankCommunicator();
        }
        po->communicator = s.single_rank.get();
      }
      return;
    }
    po->communicator = &s.learners->comm();
    s.learners->StartStage(stage, s.model, s.reference,
                           stage_checkpoint(stage));
  };
  auto restore_optimizer = [&](const std::string& stage) {
    const std::string latest = stage_checkpoint(stage);
    if (latest.empty()) return;
    const CheckpointInfo info = OpenCheckpoint(latest);
    if (s.trainer->sharded_optimizer()) {
      RestoreShardedOptimizer(*s.trainer, latest);
    } else if (fs::exists(latest + "/optimizer.safetensors")) {
      policy::SafetensorsFile file(latest + "/optimizer.safetensors");
      std::map<std::string, torch::Tensor> moments;
      for (const auto& name : file.Names())
        moments[name] = file.Get(name).clone();
      s.trainer->optimizer().LoadState(
          moments, info.state.at("optimizer_step").get<int64_t>());
    }
    if (fs::exists(latest + "/best_sft.safetensors")) {
      policy::SafetensorsFile file(latest + "/best_sft.safetensors");
      for (const auto& name : file.Names()) {
        s.best_sft_weights[name] = file.Get(name).clone();
      }
    }
  };
  // A non-finite step's error names the run's step as well as the
  // trainer's optimizer step.
  auto train_step = [&](const std::string& stage, const auto& step) {
    try {
      return step();
    } catch (const NonFiniteError& e) {
      throw NonFiniteError(fmt::format("{} step {} (global step {}): {}", stage,
                                       s.stage_step + 1, s.global_step + 1,
                                       e.what()));
    }
  };
  auto should_stop = [&]() {
    return s.options.stop_after >= 0 && s.global_step >= s.options.stop_after;
  };

  for (; s.stage_index < tc.stages.size(); ++s.stage_index) {
    const std::string& stage = tc.stages[s.stage_index];
    if (stage == "sft") {
      const SftConfig& sc = tc.sft;
      // Demonstrations: a file, or episodes of the env's scripted policy.
      std::vector<Trajectory> demos;
      if (!sc.demos.empty()) {
        ReadJsonl(sc.demos, [&](const json& j, int64_t) {
          demos.push_back(TrajectoryFromJson(j));
        });
      } else {
        rollout::ScriptedRunOptions so;
        so.env = s.env_name;
        so.env_options = s.env_options;
        so.policy = sc.demo_policy;
        so.policy_options = sc.demo_policy_options;
        so.split = "train";
        so.episodes = sc.demo_episodes;
        so.seed = DeriveSeed(s.config.run.seed, "demos", 0);
        demos = rollout::PlayScriptedEpisodes(so);
      }
      if (demos.empty()) {
        throw ConfigError("trainer.sft: no demonstrations to train on");
      }
      const rollout::EpisodeTokenizer et(*s.tokenizer);
      std::vector<TrainSequence> sequences;
      for (const Trajectory& d : demos) {
        sequences.push_back(ToSequence(et.FromDemonstration(d), 0.0, 0));
      }
      PolicyTrainerOptions po = StageTrainerOptions(s.config, "sft");
      start_stage("sft", &po);
      s.trainer = std::make_unique<PolicyTrainer>(s.model, po);
      restore_optimizer("sft");
      for (; s.stage_step < sc.steps;) {
        // The batch of this step: a seeded draw, independent of history.
        uint64_t h = DeriveSeed(s.config.run.seed, "sft", s.stage_step);
        std::vector<TrainSequence> batch;
        for (int64_t i = 0; i < sc.batch_size; ++i) {
          h = SplitMix64(h);
          batch.push_back(sequences[h % sequences.size()]);
        }
        std::map<std::string, double> m = train_step("sft", [&] {
          return s.trainer->SftStep(
              s.learners ? s.learners->SendBatch("sft", batch, 0) : batch);
        });
        ++s.stage_step;
        ++s.global_step;
        s.metrics->Log(s.global_step, "sft", m);
        s.events->AddScalars(m, s.global_step);
        CLINRL_LOG_INFO("{}",
                        MetricsLogger::ConsoleLine(s.global_step, "sft", m));
        const bool last = s.stage_step == sc.steps;
        if ((sc.eval_every > 0 && s.stage_step % sc.eval_every == 0) || last) {
          const EvalResult r = Evaluate("sft", s.validation_split,
                                        s.config.eval.validation_episodes);
          record_eval(r);
          const double acc = r.metrics.count("accuracy")
                                 ? r.metrics.at("accuracy")
                                 : r.metrics.at("reward/mean");
          if (acc > s.best_sft_accuracy) {
            s.best_sft_accuracy = acc;
            s.best_sft_weights.clear();
            for (const auto& p : s.model->named_parameters()) {
              s.best_sft_weights[p.key()] = p.value().detach().clone();
            }
          }
        }
        if ((tc.checkpoint_every > 0 &&
             s.global_step % tc.checkpoint_every == 0) ||
            last) {
          save_checkpoint("sft");
        }
        if (s.options.after_step) s.options.after_step(s.global_step);
        if (should_stop()) return {};
      }
      // The SFT policy is its best validation checkpoint.
      if (!s.best_sft_weights.empty()) {
        torch::NoGradGuard no_grad;
        for (auto& p : s.model->named_parameters()) {
          p.value().copy_(s.best_sft_weights.at(p.key()));
        }
        CLINRL_LOG_INFO(
            "SFT: kept the best validation weights (accuracy {:.3f})",
            s.best_sft_accuracy);
      }
      s.best_sft_weights.clear();
      if (s.options.final_eval) {
        record_eval(Evaluate("sft", "test", s.config.eval.test_episodes));
      }
    } else {  // grpo
      PolicyTrainerOptions po = StageTrainerOptions(s.config, "grpo");
      if (tc.kl_coef > 0 && !s.reference) {
        // The frozen reference is the policy as the GRPO stage found it (or,
        // on resume, as the checkpoint recorded it).
        s.reference = policy::Transformer(s.model->options());
        torch::NoGradGuard no_grad;
        auto dst = s.reference->named_parameters();
        const std::string latest =
            s.options.resume ? LatestCheckpoint(s.run_dir.checkpoints()) : "";
        if (!latest.empty() && fs::exists(latest + "/reference.safetensors")) {
          policy::SafetensorsFile file(latest + "/reference.safetensors");
          for (const auto& name : file.Names()) dst[name].copy_(file.Get(name));
        } else {
          for (const auto& p : s.model->named_parameters()) {
            dst[p.key()].copy_(p.value());
          }
        }
      }
      start_stage("grpo", &po);
      s.trainer = std::make_unique<PolicyTrainer>(s.model, po, s.reference);
      restore_optimizer("grpo");
      const AdvantageMode adv_mode = ParseAdvantageMode(tc.advantage);
      const rollout::RolloutOptions ro =
          rollout::RolloutOptionsFromConfig(s.config.rollout);
      LocalEpisodeSource local(s.model, *s.tokenizer, *s.client, ro,
                               s.config.rewards.timeout_ms);
      EpisodeSource& source = s.remote_episodes ? *s.remote_episodes : local;
      source.PolicyUpdated(s.model, s.policy_version);
      // The curve starts where GRPO starts (verl's val_before_train).
      if (s.stage_step == 0 && tc.eval_every > 0 && tc.val_before_train) {
        record_eval(Evaluate("grpo", s.validation_split,
                             s.config.eval.validation_episodes));
      }
      for (; s.stage_step < tc.steps;) {
        const double step_start = MonotonicSeconds();
        const uint64_t seed =
            DeriveSeed(s.config.run.seed, "grpo", s.stage_step);
        std::vector<rollout::TaskRef> tasks;
        uint64_t h = seed;
        for (int64_t i = 0; i < s.config.rollout.tasks_per_step; ++i) {
          h = SplitMix64(h);
          tasks.push_back(
              {s.env_name, "train",
               static_cast<int64_t>(h % static_cast<uint64_t>(s.train_tasks)),
               json::object()});
        }
        ScoredEpisodes played_episodes =
            source.Play(tasks, seed, s.policy_version);
        std::vector<rollout::RolloutEpisode>& episodes =
            played_episodes.episodes;
        const rollout::RolloutStats& rstats = played_episodes.stats;
        const double reward_s = played_episodes.reward_seconds;
        std::vector<double> totals;
        std::vector<int64_t> groups;
        std::vector<const Trajectory*> played;
        for (size_t i = 0; i < episodes.size(); ++i) {
          totals.push_back(episodes[i].trajectory.reward.total);
          groups.push_back(
              static_cast<int64_t>(i / static_cast<size_t>(ro.group_size)));
          played.push_back(&episodes[i].trajectory);
        }
        std::map<std::string, double> m = SummarizeEpisodes(played);
        const std::vector<double> adv =
            GroupAdvantages(totals, groups, adv_mode);
        std::vector<size_t> keep;
        int64_t dropped = 0, total_groups = 0;
        if (tc.dynamic_sampling) {
          keep = KeepInformativeGroups(totals, groups, &dropped, &total_groups);
        } else {
          for (size_t i = 0; i < episodes.size(); ++i) keep.push_back(i);
          total_groups = static_cast<int64_t>(tasks.size());
        }
        std::vector<TrainSequence> batch;
        double adv_sum = 0, adv_abs = 0;
        for (size_t i : keep) {
          // The version that sampled the episode: older than the learner's
          // when a rollout worker lagged, which the truncated importance
          // weights of the GRPO loss correct.
          batch.push_back(ToSequence(episodes[i].tokens, adv[i],
                                     episodes[i].trajectory.policy_version));
          adv_sum += adv[i];
          adv_abs += std::fabs(adv[i]);
        }
        const double learn_start = MonotonicSeconds();
        if (!batch.empty()) {
          const std::map<std::string, double> learned = train_step("grpo", [&] {
            return s.trainer->GrpoStep(
                s.learners
                    ? s.learners->SendBatch("grpo", batch, s.policy_version)
                    : batch,
                s.policy_version);
          });
          for (const auto& [k, v] : learned) {
            m[k] = v;
          }
          ++s.policy_version;
          source.PolicyUpdated(s.model, s.policy_version);
        }
        for (const auto& [k, v] : played_episodes.metrics) m[k] = v;
        m["groups/dropped_frac"] =
            total_groups > 0 ? static_cast<double>(dropped) / total_groups
                             : 0.0;
        m["advantage/mean"] = keep.empty() ? 0.0 : adv_sum / keep.size();
        m["advantage/abs_mean"] = keep.empty() ? 0.0 : adv_abs / keep.size();
        m["throughput/rollout_tokens_per_s"] =
            rstats.generate_seconds > 0
                ? rstats.generated_tokens / rstats.generate_seconds
                : 0.0;
        if (rstats.prompt_tokens > 0) {
          // Prompt tokens whose keys and values were carried from earlier
          // turns instead of being prefilled again.
          m["rollout/cached_prompt_frac"] =
              static_cast<double>(rstats.cached_prompt_tokens) /
              static_cast<double>(rstats.prompt_tokens);
        }
        m["time/rollout_s"] = rstats.seconds;
        m["time/reward_s"] = reward_s;
        m["time/learn_s"] = MonotonicSeconds() - learn_start;
        m["time/step_s"] = MonotonicSeconds() - step_start;
        ++s.stage_step;
        ++s.global_step;
        s.metrics->Log(s.global_step, "grpo", m);
        s.events->AddScalars(m, s.global_step);
        CLINRL_LOG_INFO("{}",
                        MetricsLogger::ConsoleLine(s.global_step, "grpo", m));
        if (tc.trajectory_sample_every > 0) {
          for (size_t i = 0; i < episodes.size();
               i += static_cast<size_t>(tc.trajectory_sample_every)) {
            json line = ToJson(episodes[i].trajectory);
            line["step"] = s.global_step;
            s.trajectories->Write(line);
          }
        }
        const bool last = s.stage_step == tc.steps;
        if (tc.eval_every > 0 && s.stage_step % tc.eval_every == 0 && !last) {
          record_eval(Evaluate("grpo", s.validation_split,
                               s.config.eval.validation_episodes));
        }
        if ((tc.checkpoint_every > 0 &&
             s.global_step % tc.checkpoint_every == 0) ||
            last) {
          save_checkpoint("grpo");
        }
        if (s.options.after_step) s.options.after_step(s.global_step);
        if (should_stop()) return {};
      }
      if (s.options.final_eval) {
        record_eval(Evaluate("grpo", "test", s.config.eval.test_episodes));
      }
    }
    s.stage_step = 0;
    s.trainer.reset();
  }

  std::vector<EvalResult> table;
  if (!s.options.final_eval) return table;
  auto scripted_row = [&](const std::string& label, const std::string& policy,
                          const json& policy_options) {
    rollout::ScriptedRunOptions so;
    so.env = s.env_name;
    so.env_options = s.env_options;
    so.policy = policy;
    so.policy_options = policy_options;
    so.split = "test";
    so.episodes = s.config.eval.test_episodes;
    so.seed = DeriveSeed(s.config.run.seed, "baseline", 0);
    std::vector<Trajectory> played = rollout::PlayScriptedEpisodes(so);
    for (Trajectory& t : played) {
      if (t.reward_spec.contains("components")) {
        t.reward = rewards::ScoreTrajectory(t, {s.config.rewards.timeout_ms});
      }
    }
    return EvalResult{label, "test", SummarizeEpisodes(Pointers(played))};
  };
  if (s.options.baselines) {
    table.push_back(scripted_row("random", "random", json::object()));
    // The demonstrator, when the SFT demonstrations were played here: what
    // SFT imitates and what GRPO is to improve on.
    const auto& stages = s.config.trainer.stages;
    const SftConfig& sc = s.config.trainer.sft;
    if (std::find(stages.begin(), stages.end(), "sft") != stages.end() &&
        sc.demos.empty()) {
      table.push_back(
          scripted_row("expert", sc.demo_policy, sc.demo_policy_options));
    }
  }
  for (const json& e : s.evals) {
    if (e["split"] != "test") continue;
    EvalResult r{e["label"].get<std::string>(), "test", {}};
    for (auto it = e["metrics"].begin(); it != e["metrics"].end(); ++it) {
      if (it.value().is_number())
        r.metrics[it.key()] = it.value().get<double>();
    }
    table.push_back(r);
  }
  if (s.options.baselines) {
    table.push_back(scripted_row("oracle", "oracle", json::object()));
  }
  json summary = json::array();
  for (const EvalResult& r : table) {
    summary.push_back(
        {{"policy", r.label}, {"split", r.split}, {"metrics", r.metrics}});
  }
  WriteFileAtomic(s.run_dir.root + "/summary.json", summary.dump(2) + "\n");
  s.events->Flush();
  return table;
}

}  // namespace clinrl::trainer
