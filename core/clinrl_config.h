// The schema of a clinrl run config (configs/*.json). Each section belongs to
// one part of the system; the defaults here are what `clinrl config show`
// prints for an empty file. See docs/config.md for the meaning of each key.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl {

struct RunConfig {
  std::string name = "run";
  std::string out_dir = "runs";  // the run directory is out_dir/name
  int64_t seed = 0;
  int64_t threads = 0;  // intra-op threads; 0 = all cores
  std::string log_level = "info";

  template <class V>
  void Visit(V& v) {
    v("name", name, "run name; also the run directory's name");
    v("out_dir", out_dir, "parent folder of run directories");
    v("seed", seed, "master seed for every RNG stream of the run");
    v.AtLeast("threads", threads, int64_t{0}, "intra-op threads, 0 = all");
    v.Enum("log_level", log_level,
           {"trace", "debug", "info", "warn", "error", "off"});
  }
};

// Low-rank adapters (LoRA, Hu et al. 2021; PEFT's LoraConfig): each target
// projection W x becomes W x + (alpha / rank) B A x with A [rank, in] and
// B [out, rank]; only A and B train. rank 0 = off.
struct LoraConfig {
  int64_t rank = 0;
  double alpha = 16.0;
  double dropout = 0.0;
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj",
                                             "o_proj"};

  template <class V>
  void Visit(V& v) {
    v.AtLeast("rank", rank, int64_t{0}, "adapter rank r; 0 = no LoRA");
    v.AtLeast("alpha", alpha, 0.0, "scaling numerator: updates scale alpha/r");
    v.AtLeast("dropout", dropout, 0.0, "dropout on the adapters' input");
    v("target_modules", target_modules,
      "projections that get adapters: q_proj k_proj v_proj o_proj gate_proj "
      "up_proj down_proj");
  }
};

struct PolicyConfig {
  std::string model_dir;  // an existing Hugging Face style model folder
  nlohmann::json init;    // or a HF config.json object for a fresh model
  std::string tokenizer = "byte";  // "byte" or a folder with tokenizer.json
  std::string dtype = "float32";
  std::string device = "cpu";
  LoraConfig lora;

  template <class V>
  void Visit(V& v) {
    v("model_dir", model_dir, "model folder to load (config + safetensors)");
    v("init", init, "HF config.json object for a randomly initialised model");
    v("tokenizer", tokenizer, "\"byte\" or a tokenizer.json folder");
    v.Enum("dtype", dtype, {"float32", "bfloat16", "float16"});
    v("device", device,
      "cpu, cuda or cuda:N; learner ranks on one node take their local GPU");
    v("lora", lora);
  }
};

struct EnvEntry {
  std::string name;
  std::string endpoint;  // empty = in-process
  nlohmann::json options = nlohmann::json::object();
  // Share of a mixture's training tasks: each task of a step picks its env
  // with probability weight / sum of weights.
  double weight = 1.0;
  // Robustness wrappers around the env, innermost first
  // (docs/envs/wrappers.md): each rewrites the observations without changing
  // the answer. Names are checked against the wrapper registry when the run
  // connects its envs.
  struct Wrapper {
    std::string name;
    nlohmann::json options = nlohmann::json::object();

    template <class V>
    void Visit(V& v) {
      v("name", name, "registered env wrapper name");
      v("options", options, "wrapper-specific options");
    }
  };
  std::vector<Wrapper> wrappers;

  template <class V>
  void Visit(V& v) {
    v("name", name, "registered env name");
    v("endpoint", endpoint, "env server endpoint; empty runs it in-process");
    v("options", options, "env-specific options");
    v.AtLeast("weight", weight, 0.0,
              "env mixture: relative share of the training tasks");
    v("wrappers", wrappers, "robustness wrappers, innermost first");
  }
};

// Changes to the reward spec an env's resets carry (docs/rewards.md):
// rewards.overrides.<env>. Applied to every episode of that env before it is
// scored, and checked against the reward registry when the run starts.
struct RewardOverride {
  // Components as in a reward spec ({name, plugin, weight, params}): one
  // named like an env component replaces it, any other is added.
  std::vector<nlohmann::json> components;
  // New weights of components by name (the env's or added ones); 0 keeps a
  // component's score in the breakdown but out of the total.
  std::map<std::string, double> weights;
  std::string success;  // a component to count as success; "" = the env's

  template <class V>
  void Visit(V& v) {
    v("components", components,
      "components to add, or to replace the env's of the same name");
    v("weights", weights, "component name -> new weight");
    v("success", success, "the success component; empty keeps the env's");
  }
};

struct RewardsConfig {
  std::string endpoint;              // empty = in-process
  std::vector<std::string> plugins;  // shared libraries with extra rewards
  int64_t workers = 2;
  int64_t timeout_ms = 5000;
  std::map<std::string, RewardOverride> overrides;  // by env name

  template <class V>
  void Visit(V& v) {
    v("endpoint", endpoint, "reward server endpoint; empty = in-process");
    v("plugins", plugins, "shared libraries that register more rewards");
    v.AtLeast("workers", workers, int64_t{1}, "scoring threads");
    v.AtLeast("timeout_ms", timeout_ms, int64_t{1}, "per-plug-in timeout");
    v("overrides", overrides,
      "env name -> changes to the reward spec of its episodes");
  }
};

struct RolloutConfig {
  int64_t group_size = 8;
  int64_t tasks_per_step = 8;
  int64_t max_turns = 12;
  int64_t max_tokens_per_turn = 64;
  int64_t max_tokens_per_episode = 1024;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  // "synchronous": rounds (every ready episode's turn, then every env
  // reply), repeatable for a seed; "continuous": an episode's next turn
  // joins the running decode as soon as its env replies.
  std::string schedule = "synchronous";

  template <class V>
  void Visit(V& v) {
    v.AtLeast("group_size", group_size, int64_t{1}, "episodes per task (G)");
    v.AtLeast("tasks_per_step", tasks_per_step, int64_t{1}, "tasks per step");
    v.AtLeast("max_turns", max_turns, int64_t{1}, "policy turns per episode");
    v.AtLeast("max_tokens_per_turn", max_tokens_per_turn, int64_t{1});
    v.AtLeast("max_tokens_per_episode", max_tokens_per_episode, int64_t{1});
    v.AtLeast("temperature", temperature, 0.0, "sampling temperature");
    v("top_p", top_p, "nucleus sampling mass, 1 = off");
    v.AtLeast("top_k", top_k, int64_t{0}, "top-k sampling, 0 = off");
    v.Enum("schedule", schedule, {"synchronous", "continuous"},
           "how episodes' turns share generation steps");
  }
};

struct SftConfig {
  std::string demos;  // JSONL of demonstrations; empty = generate them
  std::string demo_policy = "oracle";
  nlohmann::json demo_policy_options = nlohmann::json::object();
  int64_t demo_episodes = 2000;
  int64_t steps = 200;
  int64_t batch_size = 32;
  double lr = 1e-3;
  int64_t warmup_steps = 10;
  double min_lr_ratio = 0.1;
  int64_t eval_every = 50;

  template <class V>
  void Visit(V& v) {
    v("demos", demos, "demonstration JSONL; empty = play demo_policy");
    v("demo_policy", demo_policy, "scripted policy that writes the demos");
    v("demo_policy_options", demo_policy_options,
      "options of the scripted policy (e.g. noise)");
    v.AtLeast("demo_episodes", demo_episodes, int64_t{1});
    v.AtLeast("steps", steps, int64_t{0}, "SFT optimizer steps");
    v.AtLeast("batch_size", batch_size, int64_t{1}, "sequences per step");
    v.AtLeast("lr", lr, 0.0, "SFT peak learning rate");
    v.AtLeast("warmup_steps", warmup_steps, int64_t{0});
    v.AtLeast("min_lr_ratio", min_lr_ratio, 0.0,
              "SFT cosine floor / peak (trainer.min_lr_ratio is GRPO's)");
    v.AtLeast("eval_every", eval_every, int64_t{0},
              "validation every N steps; the best weights are kept");
  }
};

struct EvalConfig {
  int64_t validation_episodes = 64;
  int64_t test_episodes = 200;

  template <class V>
  void Visit(V& v) {
    v.AtLeast("validation_episodes", validation_episodes, int64_t{1},
              "greedy episodes per validation");
    v.AtLeast("test_episodes", test_episodes, int64_t{1},
              "greedy episodes of the final test evaluation");
  }
};

struct TrainerConfig {
  std::vector<std::string> stages = {"grpo"};
  int64_t steps = 100;
  double lr = 1e-5;
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.1;
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  std::string non_finite = "stop";  // NaN/Inf loss or grad norm
  // A step whose episodes end env_error more often than this stops the run
  // (a lost env server) instead of training on them.
  double max_env_error_fraction = 0.1;
  int64_t micro_batch = 8;
  bool activation_checkpointing = false;
  // Compute precision of forward/backward and rollout sampling: bf16 runs
  // the matrix products in bfloat16 over float32 master weights (autocast).
  std::string precision = "fp32";
  std::string reduce_dtype = "fp32";  // data-parallel gradient reduction
  std::string sharding = "zero1";     // data-parallel learner state
  bool packing = false;  // concatenate micro-batch sequences, no padding
  int64_t epochs_per_batch = 1;
  std::string advantage = "grpo";
  std::string policy_loss = "ppo_clip";
  std::string reward_normalization = "total";
  std::string credit = "episode";
  double clip_low = 0.2;
  double clip_high = 0.28;
  double kl_coef = 0.0;
  double kl_in_reward = 0.0;
  std::string kl_estimator = "k3";
  std::string loss_agg = "token_mean";
  bool dynamic_sampling = false;
  int64_t max_refill_rounds = 3;
  double tis_cap = 2.0;
  double entropy_coef = 0.0;
  int64_t checkpoint_every = 0;
  int64_t keep_checkpoints = 3;
  int64_t eval_every = 0;
  bool val_before_train = true;  // validation at the start of GRPO
  int64_t trajectory_sample_every = 1;
  SftConfig sft;

  template <class V>
  void Visit(V& v) {
    v("stages", stages, "stages to run in order: sft, grpo");
    v.AtLeast("steps", steps, int64_t{0}, "optimizer steps of the GRPO stage");
    v.AtLeast("lr", lr, 0.0, "peak learning rate");
    v.AtLeast("warmup_steps", warmup_steps, int64_t{0});
    v.AtLeast("min_lr_ratio", min_lr_ratio, 0.0,
              "GRPO cosine floor / peak (1 = constant)");
    v.AtLeast("weight_decay", weight_decay, 0.0, "AdamW decoupled decay");
    v.AtLeast("grad_clip", grad_clip, 0.0, "global grad-norm clip, 0 = off");
    v.Enum("non_finite", non_finite, {"stop", "skip"},
           "a NaN/Inf loss or grad norm: stop the run, or skip the step");
    v.AtLeast("max_env_error_fraction", max_env_error_fraction, 0.0,
              "stop the run when more of a step's episodes end env_error");
    v.AtLeast("micro_batch", micro_batch, int64_t{1}, "sequences per pass");
    v("activation_checkpointing", activation_checkpointing,
      "recompute each decoder layer in backward instead of keeping its "
      "activations: less memory, one more forward");
    v.Enum("precision", precision, {"fp32", "bf16"},
           "bf16: bfloat16 matrix products over float32 master weights, "
           "float32 loss and log-softmax");
    v.Enum("reduce_dtype", reduce_dtype, {"fp32", "bf16"},
           "dtype of the data-parallel gradient reduce-scatter");
    v.Enum("sharding", sharding, {"zero1", "zero3"},
           "data-parallel learner: zero1 shards AdamW's moments, zero3 also "
           "the parameters and gradients (layers gathered as they compute)");
    v("packing", packing,
      "pack a micro-batch's sequences into rows without padding, each "
      "attending only to itself");
    v.AtLeast("epochs_per_batch", epochs_per_batch, int64_t{1});
    v.Enum("advantage", advantage, {"grpo", "dr_grpo", "rloo", "reinforce_pp"},
           "group rewards to advantages (docs/training.md, Estimators)");
    v.Enum("policy_loss", policy_loss, {"ppo_clip", "gspo", "cispo"},
           "per-token clipped ratio, GSPO's sequence ratio, or CISPO's "
           "clipped stop-gradient weight");
    v.Enum("credit", credit, {"episode", "turn"},
           "one advantage per episode, or per policy turn from the env's "
           "step rewards (returns-to-go, turn-level group baseline)");
    v.Enum("reward_normalization", reward_normalization,
           {"total", "per_component"},
           "advantages of the weighted total, or the weighted sum of each "
           "component's own advantages");
    v.AtLeast("clip_low", clip_low, 0.0, "ratio floor 1 - clip_low");
    v.AtLeast("clip_high", clip_high, 0.0, "ratio ceiling 1 + clip_high");
    v.AtLeast("kl_coef", kl_coef, 0.0, "KL to the frozen reference");
    v.AtLeast("kl_in_reward", kl_in_reward, 0.0,
              "KL to the reference as a reward penalty: coefficient");
    v.Enum("kl_estimator", kl_estimator, {"k1", "k2", "k3"});
    v.Enum("loss_agg", loss_agg,
           {"token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"});
    v("dynamic_sampling", dynamic_sampling,
      "drop zero-variance groups and play more groups to refill the batch");
    v.AtLeast("max_refill_rounds", max_refill_rounds, int64_t{0},
              "dynamic sampling: extra rounds of play per step, at most");
    v.AtLeast("tis_cap", tis_cap, 0.0, "truncated importance weight cap");
    v("entropy_coef", entropy_coef, "entropy bonus coefficient");
    v.AtLeast("checkpoint_every", checkpoint_every, int64_t{0});
    v.AtLeast("keep_checkpoints", keep_checkpoints, int64_t{1});
    v.AtLeast("eval_every", eval_every, int64_t{0});
    v("val_before_train", val_before_train,
      "evaluate on the validation split before the first GRPO step");
    v.AtLeast("trajectory_sample_every", trajectory_sample_every, int64_t{0},
              "write every Nth trajectory to trajectories.jsonl, 0 = none");
    v("sft", sft, "the SFT stage");
  }
};

struct DistributedConfig {
  std::string backend = "single";
  int64_t learner_ranks = 1;
  int64_t rollout_ranks = 0;
  int64_t env_server_ranks = 0;
  int64_t reward_server_ranks = 0;
  int64_t timeout_s = 300;
  // Endpoints of the role map (docs/distributed.md): "ipc" on one node,
  // "tcp" across nodes, "auto" picks tcp when the ranks span several hosts.
  std::string transport = "auto";
  std::string ipc_dir;        // empty = <run dir>/ipc
  int64_t base_port = 29500;  // tcp: rank r binds base_port + 2r (+1)
  int64_t max_policy_lag = 1;
  // Rollout workers play step k+1 while the learner trains on step k.
  bool overlap = false;
  int64_t heartbeat_ms = 1000;
  int64_t heartbeat_misses = 3;
  // CURVE keys of every tcp:// endpoint (docs/distributed.md, "Keys and what
  // they protect"). `clinrl distributed run`: empty = <run dir>/curve, made
  // by the first process that needs it. `clinrl train`: empty = no CURVE.
  std::string curve_keys;

  template <class V>
  void Visit(V& v) {
    v.Enum("backend", backend, {"single", "mpi", "nccl"});
    v.AtLeast("learner_ranks", learner_ranks, int64_t{1});
    v.AtLeast("rollout_ranks", rollout_ranks, int64_t{0});
    v.AtLeast("env_server_ranks", env_server_ranks, int64_t{0});
    v.AtLeast("reward_server_ranks", reward_server_ranks, int64_t{0});
    v.AtLeast("timeout_s", timeout_s, int64_t{1}, "collective timeout");
    v.Enum("transport", transport, {"auto", "ipc", "tcp"});
    v("ipc_dir", ipc_dir, "folder of ipc:// sockets; empty = <run dir>/ipc");
    v.AtLeast("base_port", base_port, int64_t{1024},
              "tcp: first port of the role map's endpoints");
    v.AtLeast("max_policy_lag", max_policy_lag, int64_t{0},
              "oldest usable rollout: learner version - max_policy_lag");
    v("overlap", overlap,
      "rollout workers play the next step's groups with the current weights "
      "while the learner updates (one step off-policy; max_policy_lag >= 1)");
    v.AtLeast("heartbeat_ms", heartbeat_ms, int64_t{10},
              "rollout worker heartbeat interval");
    v.AtLeast("heartbeat_misses", heartbeat_misses, int64_t{1},
              "missed heartbeats before a rollout worker counts as dead");
    v("curve_keys", curve_keys,
      "folder of the CURVE keys of tcp:// endpoints (clinrl keys generate); "
      "empty = <run dir>/curve in a distributed run, none in clinrl train");
  }
};

struct ClinrlConfig {
  RunConfig run;
  PolicyConfig policy;
  std::vector<EnvEntry> envs;
  RewardsConfig rewards;
  RolloutConfig rollout;
  TrainerConfig trainer;
  DistributedConfig distributed;
  EvalConfig eval;

  template <class V>
  void Visit(V& v) {
    v("run", run);
    v("policy", policy);
    v("envs", envs);
    v("rewards", rewards);
    v("rollout", rollout);
    v("trainer", trainer);
    v("distributed", distributed);
    v("eval", eval);
  }
};

}  // namespace clinrl
