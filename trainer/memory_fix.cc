#include "trainer/memory_fix.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <vector>

namespace clinrl::trainer {
namespace {

// The LoRA rank a fix suggests (PEFT's examples use 8 to 64).
constexpr int64_t kSuggestedLoraRank = 16;
// A fix must leave this share of the device free: the plan is an estimate
// (within 20% of the measured peak on the CPU), and a run at 99% of a
// device is one allocator hiccup from running out.
constexpr double kFixHeadroom = 0.9;
// More learner ranks than this are not a fix anyone can take.
constexpr int64_t kMaxLearnerRanks = 4096;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string GiB(int64_t bytes) {
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) /
                                       static_cast<double>(int64_t{1} << 30));
}

// One change to try: the config and options it gives, and how to say it.
struct Variant {
  ClinrlConfig config;
  MemoryPlanOptions options;
  std::string label;
};

// An option that may make a run fit, as variants from the mildest change
// (e.g. micro_batch - 1) to the strongest; `make` sets variant i and returns
// false past the last. `kinds` are the items it shrinks: candidates aimed
// at the largest item are tried first. A `series` (micro-batch, learner
// ranks, episode length) has many variants; the others one.
struct FixCandidate {
  std::vector<std::string> kinds;
  std::function<bool(int, Variant*)> make;
  bool series = false;
};

std::vector<FixCandidate> TrainerFixes(const TrainerConfig& t) {
  std::vector<FixCandidate> out;
  if (!t.activation_checkpointing) {
    out.push_back({{"activations", "logits", "masks", "workspace"},
                   [](int i, Variant* v) {
                     v->config.trainer.activation_checkpointing = true;
                     v->label = "trainer.activation_checkpointing=true";
                     return i == 0;
                   }});
  }
  out.push_back({{"activations", "logits", "masks", "workspace", "batch"},
                 [m = t.micro_batch](int i, Variant* v) {
                   const int64_t micro = m - 1 - i;
                   v->config.trainer.micro_batch = micro;
                   v->label = fmt::format("trainer.micro_batch={}", micro);
                   return micro >= 1;
                 },
                 true});
  if (t.precision == "fp32") {
    out.push_back(
        {{"activations", "logits", "workspace", "kv_cache", "generation"},
         [](int i, Variant* v) {
           v->config.trainer.precision = "bf16";
           v->label = "trainer.precision=bf16";
           return i == 0;
         }});
  }
  return out;
}

std::vector<FixCandidate> ScaleFixes(const ClinrlConfig& c,
                                     const MemoryPlanOptions& o,
                                     int64_t ranks) {
  std::vector<FixCandidate> out;
  const int64_t workers = c.distributed.rollout_ranks;
  const bool gpus = !o.cluster.cpu && !o.single_process;
  // ZeRO-3 shards trained parameters; with LoRA it is refused
  // (trainer.sharding), so it is no fix there.
  if (!o.single_process && o.sharding == Sharding::kZero1 && ranks > 1 &&
      c.policy.lora.rank == 0) {
    out.push_back({{"weights", "gradients", "optimizer", "reference", "buffers",
                    "compute_copy"},
                   [](int i, Variant* v) {
                     v->options.sharding = Sharding::kZero3;
                     v->label = "--sharding zero3";
                     return i == 0;
                   }});
  }
  if (c.policy.lora.rank == 0) {
    out.push_back(
        {{"gradients", "optimizer", "buffers"}, [](int i, Variant* v) {
           v->config.policy.lora.rank = kSuggestedLoraRank;
           v->label = fmt::format("policy.lora.rank={}", kSuggestedLoraRank);
           return i == 0;
         }});
  }
  if (gpus) {
    out.push_back(
        {{"weights", "gradients", "optimizer", "reference", "buffers"},
         [ranks](int i, Variant* v) {
           const int64_t learners = ranks + 1 + i;
           const int64_t workers = v->config.distributed.rollout_ranks;
           v->options.learner_ranks = learners;
           v->options.cluster.gpus_per_node =
               CeilDiv(learners + workers, v->options.cluster.nodes);
           v->label = fmt::format("{} learner ranks ({} GPUs)", learners,
                                  learners + workers);
           return learners <= kMaxLearnerRanks;
         },
         true});
  }
  if (gpus && workers == 0) {
    out.push_back({{"kv_cache", "generation"}, [](int i, Variant* v) {
                     v->config.distributed.rollout_ranks = 1;
                     v->options.cluster.gpus_per_node =
                         CeilDiv(v->options.learner_ranks + 1,
                                 v->options.cluster.nodes);
                     v->label =
                         "distributed.rollout_ranks=1 (generation on a GPU "
                         "of its own)";
                     return i == 0;
                   }});
  }
  return out;
}

FixCandidate ShorterEpisodes(int64_t tokens) {
  return {
      {"activations", "logits", "masks", "workspace", "kv_cache", "generation"},
      [tokens](int i, Variant* v) {
        const int64_t shorter = tokens >> (i + 1);
        v->config.rollout.max_tokens_per_episode = shorter;
        v->label = fmt::format("rollout.max_tokens_per_episode={}", shorter);
        return shorter >= 64;
      }};
}

bool FitsWithHeadroom(const MemoryPlan& plan) {
  const double budget =
      kFixHeadroom * static_cast<double>(plan.options.cluster.device_bytes);
  if (!plan.fits) return false;
  for (const RoleMemory& role : plan.roles) {
    if (role.on_device && static_cast<double>(role.peak_bytes) > budget) {
      return false;
    }
  }
  return !plan.options.cluster.cpu ||
         static_cast<double>(plan.node_bytes) <= budget;
}

// "LABEL (peaks then: learner 61.20 GiB, rollout 44.52 GiB)".
std::string Describe(const MemoryPlan& plan, const std::string& label) {
  std::string peaks;
  for (const RoleMemory& role : plan.roles) {
    if (!role.on_device) continue;
    peaks += fmt::format("{}{} {}", peaks.empty() ? "" : ", ", role.role,
                         GiB(role.peak_bytes));
  }
  return fmt::format("{} (peaks then: {})", label, peaks);
}

// The first variant of `candidate`, applied on top of `base` (whose label
// lists the options already applied), that makes the run fit; "" if none.
std::string FirstFitting(const FixCandidate& candidate, const Variant& base,
                         const policy::ModelConfig& model) {
  for (int i = 0;; ++i) {
    Variant v = base;
    if (!candidate.make(i, &v)) return "";
    const MemoryPlan plan = PlanMemory(v.config, model, v.options);
    if (!FitsWithHeadroom(plan)) continue;
    return Describe(plan,
                    base.label.empty() ? v.label : base.label + ", " + v.label);
  }
}

// One option if one is enough, candidates aimed at `largest_kind` first.
// Otherwise the one-variant options added up in the same order, with each
// series tried on top of every sum: "trainer.activation_checkpointing=true,
// trainer.micro_batch=4". "" when even all of them do not fit.
std::string FindFix(const ClinrlConfig& config,
                    const policy::ModelConfig& model,
                    const MemoryPlanOptions& options, int64_t ranks,
                    int64_t tokens, const std::string& largest_kind) {
  std::vector<FixCandidate> candidates = TrainerFixes(config.trainer);
  for (FixCandidate& c : ScaleFixes(config, options, ranks)) {
    candidates.push_back(std::move(c));
  }
  candidates.push_back(ShorterEpisodes(tokens));
  std::stable_partition(
      candidates.begin(), candidates.end(), [&](const FixCandidate& c) {
        return std::find(c.kinds.begin(), c.kinds.end(), largest_kind) !=
               c.kinds.end();
      });
  Variant base{config, options, ""};
  base.options.learner_ranks = ranks;
  for (const FixCandidate& candidate : candidates) {
    const std::string fix = FirstFitting(candidate, base, model);
    if (!fix.empty()) return fix;
  }
  for (const FixCandidate& candidate : candidates) {
    if (candidate.series) continue;
    Variant next = base;
    candidate.make(0, &next);
    next.label =
        base.label.empty() ? next.label : base.label + ", " + next.label;
    base = next;
    const MemoryPlan plan = PlanMemory(base.config, model, base.options);
    if (FitsWithHeadroom(plan)) return Describe(plan, base.label);
    for (const FixCandidate& series : candidates) {
      if (!series.series) continue;
      const std::string fix = FirstFitting(series, base, model);
      if (!fix.empty()) return fix;
    }
  }
  return "";
}

}  // namespace

std::string FindMemoryFix(const ClinrlConfig& config,
                          const policy::ModelConfig& model,
                          const MemoryPlanOptions& options,
                          const MemoryPlan& plan) {
  if (plan.fits) return "";
  // The kind of the largest item of the first role over its device (or of
  // the learner's, when the node or the GPU count is what fails).
  const RoleMemory* decisive = &plan.roles.front();
  for (const RoleMemory& role : plan.roles) {
    if (!role.fits) {
      decisive = &role;
      break;
    }
  }
  const std::string kind =
      decisive->largest >= 0 ? decisive->items[decisive->largest].kind : "";
  return FindFix(config, model, options, plan.learner_ranks,
                 plan.sequence_tokens, kind);
}

MemoryPlan PlanMemoryWithFix(const ClinrlConfig& config,
                             const policy::ModelConfig& model,
                             const MemoryPlanOptions& options) {
  MemoryPlan plan = PlanMemory(config, model, options);
  plan.fix = FindMemoryFix(config, model, options, plan);
  return plan;
}

}  // namespace clinrl::trainer
