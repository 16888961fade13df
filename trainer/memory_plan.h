// The memory a run needs before it starts (`clinrl plan`, and the check
// `clinrl train` runs first): the bytes each process of the run holds on its
// device, item by item and per role, computed from the config and the
// model's shape alone, and a verdict: does every role fit its device, which
// item is the largest, and which one option would make the run fit.
//
// Decisions (the formulas and where each comes from are listed in
// docs/distributed.md, "Planning memory: clinrl plan"):
// - Items are counted as the code holds them today, not as a textbook
//   would: float32 master weights, gradients in the parameters' dtype that
//   live from the first backward to the end of the optimizer step, AdamW's
//   two moments (ShardedAdamW's 1/N under ZeRO-1), the tensors each decoder
//   layer saves for backward (policy/transformer.cc), the output head as
//   policy_trainer.cc and policy/head_log_probs.cc compute it, and the paged
//   KV pool as policy/paged_kv_cache.cc grows it. ZeRO-3 (zero3.h) is
//   planned as FSDP does it: parameters, gradients and moments 1/N, plus two
//   gathered units (decoder layers, embedding, head) at once.
// - A process's peak is its resident items plus its largest phase (forward
//   and backward of a micro-batch, the optimizer step, generation, a weights
//   update): activations and the KV cache are never live together.
// - The worst case wherever the run varies: every sequence as long as the
//   rollout allows (rollout.max_tokens_per_episode), no prefix sharing.
// - On the CPU one "device" is a node's RAM, shared by every process on it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/clinrl_config.h"
#include "policy/model_config.h"
#include "trainer/sharding.h"

namespace clinrl::trainer {

// The phases of a process's life. An item counts in every phase of its mask;
// kPhaseAll marks a resident item. Forward and backward are apart because
// under activation checkpointing the forward ends with the autocast cache
// full and the backward recomputes one layer at a time.
enum MemoryPhase : unsigned {
  kPhaseForward = 1u,    // the end of a micro-batch's forward
  kPhaseBackward = 2u,   // its backward
  kPhaseOptimizer = 4u,  // gradient reduction, clipping, AdamW
  kPhaseRollout = 8u,    // generating episodes (training or evaluation)
  kPhaseWeights = 16u,   // receiving a new policy version
  kPhaseTrain = kPhaseForward | kPhaseBackward,
  kPhaseAll = 31u,
};
std::string PhaseName(unsigned phases);

struct MemoryItem {
  std::string name;  // "AdamW moments (float32, 1/6 each)"
  std::string kind;  // what a fix targets: weights, gradients, optimizer,
                     // activations, logits, kv_cache, ... (see .cc)
  int64_t bytes = 0;
  unsigned phases = kPhaseAll;
  std::string formula;  // how `bytes` was computed, with the numbers
};

struct RoleMemory {
  std::string role;       // learner, rollout, env_server, reward_server
  int64_t processes = 0;  // of this role in the run
  // False for a host process of a GPU cluster (env and reward servers): its
  // items are listed but not held against a GPU.
  bool on_device = true;
  std::string note;  // e.g. "rank 0 shown: it also plays evaluation"
  std::vector<MemoryItem> items;
  int64_t peak_bytes = 0;  // resident items + the largest phase
  unsigned peak_phase = kPhaseAll;
  bool fits = true;
  int largest = -1;  // index of the largest item live at the peak
};

// Where the processes run.
struct ClusterShape {
  bool cpu = true;  // devices are the nodes' RAM (policy.device cpu)
  int64_t nodes = 1;
  int64_t gpus_per_node = 0;  // GPU clusters
  int64_t device_bytes = 0;   // one GPU's memory, or one node's RAM
};

// The runtime's own share of a device, measured rather than derived: on the
// CPU the resident size of `clinrl bench learner --quick` less its tiny
// model (LibTorch, oneDNN and OpenMP pools, the binary); on a GPU the CUDA
// context with cuBLAS and NCCL workspaces.
constexpr int64_t kCpuRuntimeBytes = int64_t{384} << 20;
constexpr int64_t kCudaRuntimeBytes = int64_t{1} << 30;

struct MemoryPlanOptions {
  ClusterShape cluster;
  Sharding sharding = Sharding::kZero1;
  int64_t learner_ranks = 0;   // data-parallel degree; 0 = the config's
  int64_t runtime_bytes = -1;  // -1 = kCpuRuntimeBytes or kCudaRuntimeBytes
  // `clinrl train`: one process, so fixes that need more processes (ZeRO-3,
  // more GPUs, a rollout worker) are not suggested.
  bool single_process = false;
};

struct MemoryPlan {
  policy::ModelConfig model;
  MemoryPlanOptions options;
  int64_t learner_ranks = 1;
  int64_t rollout_workers = 0;
  int64_t parameters = 0;          // the model's, adapters left out
  int64_t adapter_parameters = 0;  // LoRA's A and B matrices
  int64_t sequence_tokens = 0;     // the longest training sequence
  int64_t micro_batch_sequences = 0;
  std::vector<RoleMemory> roles;
  int64_t node_bytes = 0;  // CPU: the busiest node's processes together
  bool fits = true;
  std::string problem;  // when !fits: which role needs how much of what
  std::string largest;  // the largest item of the role that decides
  // Options that make the run fit ("trainer.micro_batch=4"), with the
  // peak they give; empty when it fits or nothing the planner knows does
  // (memory_fix.h fills it).
  std::string fix;
};

// Parameters of LoRA's adapters: rank x (in + out) per target projection
// per layer. Throws ConfigError naming the policy.lora field at fault
// (policy::LoraOptions::FromConfig's checks).
int64_t LoraAdapterParameters(const policy::ModelConfig& model,
                              const LoraConfig& lora);

// The policy's shape as the run will build it: policy.model_dir's
// config.json, else policy.init (its vocab_size defaulting to the
// tokenizer's, as policy::LoadPolicy does). Throws ConfigError naming the
// policy field at fault.
policy::ModelConfig PlanModelConfig(const PolicyConfig& policy);

// Items per role, peaks and the verdict; `fix` stays empty (memory_fix.h
// finds one). A cluster with fewer GPUs than the run has GPU processes does
// not fit (`problem` says so).
MemoryPlan PlanMemory(const ClinrlConfig& config,
                      const policy::ModelConfig& model,
                      const MemoryPlanOptions& options);

// One JSON object: model, run settings, cluster, roles with their items,
// fits, problem, largest, fix.
nlohmann::json MemoryPlanToJson(const MemoryPlan& plan);
// A table per role (item, phase, bytes, GiB) and the verdict line.
std::string FormatMemoryPlan(const MemoryPlan& plan);
// The verdict in one line: "fits: ..." or "does not fit: ...; fix: ...".
std::string MemoryVerdict(const MemoryPlan& plan);

}  // namespace clinrl::trainer
