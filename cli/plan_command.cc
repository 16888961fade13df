// `clinrl plan CONFIG [--nodes N] [--gpus-per-node G] [--gpu-memory-gib M]
// [--sharding zero1|zero3] [--set k=v ...] [--json]`: the memory each role
// of a run needs on its device, item by item, and whether the run fits
// (trainer/memory_plan.h; docs/distributed.md, "Planning memory").
//
// The cluster: with --nodes or --gpus-per-node the learner ranks fill the
// GPUs the rollout workers leave (nodes x gpus - distributed.rollout_ranks);
// without them it is the config's distributed section, one GPU per learner
// rank and rollout worker. A GPU's memory is --gpu-memory-gib, else asked of
// this machine's GPU; on the CPU (policy.device cpu and no GPU flag) a
// device is a node's RAM, MemTotal of /proc/meminfo.
#include <cmath>
#include <iostream>

#include "cli/command_registry.h"
#include "core/clinrl_config.h"
#include "core/config.h"
#include "core/error.h"
#include "trainer/memory_capacity.h"
#include "trainer/memory_fix.h"
#include "trainer/memory_plan.h"

namespace clinrl::cli {
namespace {

struct PlanArgs {
  ConfigArgs config;
  // Flags are read as text so a bad value gets clinrl's own message.
  std::string nodes;
  std::string gpus_per_node;
  std::string gpu_memory_gib;
  std::string sharding;  // default: the config's trainer.sharding
  bool json = false;
};

int64_t PositiveInteger(const std::string& flag, const std::string& value) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || n < 1) {
    throw BadRequest(
        fmt::format("{}: got '{}', expected a positive integer", flag, value));
  }
  return n;
}

double PositiveNumber(const std::string& flag, const std::string& value) {
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || !std::isfinite(x) || x <= 0) {
    throw BadRequest(
        fmt::format("{}: got '{}', expected a positive number of GiB (e.g. 80)",
                    flag, value));
  }
  return x;
}

// One GPU's memory: the flag, else this machine's GPU of policy.device.
int64_t GpuBytes(const ClinrlConfig& config, const PlanArgs& args) {
  if (!args.gpu_memory_gib.empty()) {
    const double gib = PositiveNumber("--gpu-memory-gib", args.gpu_memory_gib);
    return static_cast<int64_t>(gib * static_cast<double>(int64_t{1} << 30));
  }
  const std::string device =
      config.policy.device == "cpu" ? "cuda" : config.policy.device;
  try {
    return trainer::DeviceMemoryBytes(device, "policy.device");
  } catch (const ConfigError& e) {
    throw BadRequest(fmt::format(
        "--gpu-memory-gib: not given, and this machine has no GPU to ask "
        "({}); pass one GPU's memory in GiB",
        e.what()));
  }
}

trainer::MemoryPlanOptions OptionsFromFlags(const ClinrlConfig& config,
                                            const PlanArgs& args) {
  trainer::MemoryPlanOptions o;
  o.sharding =
      args.sharding.empty()
          ? trainer::ParseSharding(config.trainer.sharding, "trainer.sharding")
          : trainer::ParseSharding(args.sharding, "--sharding");
  const bool gpu_flags =
      !args.gpus_per_node.empty() || !args.gpu_memory_gib.empty();
  o.cluster.cpu = !gpu_flags && config.policy.device == "cpu";
  o.cluster.nodes =
      args.nodes.empty() ? 1 : PositiveInteger("--nodes", args.nodes);
  if (o.cluster.cpu) {
    o.cluster.device_bytes = trainer::HostMemoryBytes();
    return o;
  }
  const DistributedConfig& d = config.distributed;
  if (args.gpus_per_node.empty()) {
    o.cluster.gpus_per_node =
        (d.learner_ranks + d.rollout_ranks + o.cluster.nodes - 1) /
        o.cluster.nodes;
    o.learner_ranks =
        args.nodes.empty()
            ? d.learner_ranks
            : o.cluster.nodes * o.cluster.gpus_per_node - d.rollout_ranks;
  } else {
    o.cluster.gpus_per_node =
        PositiveInteger("--gpus-per-node", args.gpus_per_node);
    o.learner_ranks =
        o.cluster.nodes * o.cluster.gpus_per_node - d.rollout_ranks;
    if (o.learner_ranks < 1) {
      throw BadRequest(fmt::format(
          "--gpus-per-node: {} node(s) x {} GPUs leave no GPU for a learner "
          "after distributed.rollout_ranks {}; expected more GPUs",
          o.cluster.nodes, o.cluster.gpus_per_node, d.rollout_ranks));
    }
  }
  o.cluster.device_bytes = GpuBytes(config, args);
  return o;
}

void AddPlanCommand(CLI::App& app) {
  auto* plan = app.add_subcommand(
      "plan",
      "memory per device and role of a run (weights, gradients, optimizer, "
      "activations, KV cache), and whether it fits");
  auto args = std::make_shared<PlanArgs>();
  AddConfigArgs(plan, &args->config);
  plan->add_option("--nodes", args->nodes, "nodes of the cluster (default 1)");
  plan->add_option("--gpus-per-node", args->gpus_per_node,
                   "GPUs per node; learner ranks fill those the rollout "
                   "workers leave");
  plan->add_option("--gpu-memory-gib", args->gpu_memory_gib,
                   "memory of one GPU in GiB (default: ask this machine's)");
  plan->add_option("--sharding", args->sharding,
                   "zero1 (optimizer state sharded) or zero3 (parameters, "
                   "gradients and optimizer state); default: the config's "
                   "trainer.sharding");
  plan->add_flag("--json", args->json, "print one JSON object");
  plan->callback([args] {
    const int rc = RunCommand([&] {
      const auto config = config::ResolveConfig<ClinrlConfig>(
          args->config.path, args->config.overrides);
      const trainer::MemoryPlanOptions options =
          OptionsFromFlags(config, *args);
      const policy::ModelConfig model = trainer::PlanModelConfig(config.policy);
      const trainer::MemoryPlan result =
          trainer::PlanMemoryWithFix(config, model, options);
      if (args->json) {
        std::cout << trainer::MemoryPlanToJson(result).dump() << "\n";
      } else {
        std::cout << trainer::FormatMemoryPlan(result);
      }
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(plan, AddPlanCommand);

}  // namespace clinrl::cli
