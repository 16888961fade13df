// `clinrl bench learner`: GRPO updates (PolicyTrainer::GrpoStep: forward,
// clipped-surrogate loss, backward, clipping, AdamW) on the ~22M-parameter
// bench model, reported as tokens/s and GFLOP/s next to the float32 GEMM
// peak measured in the same run.
//
// `--precision bf16` trains in mixed precision, `--checkpointing on`
// recomputes layers in backward, `--packing on` packs sequences without
// padding (`compare` measures padded and packed in one run on a batch whose
// lengths vary 4x: packing_speedup), `--device cuda` runs on a GPU (MFU
// against the bf16 or fp32 GEMM rate of that GPU, measured in the same run),
// `--model FILE` takes another model shape. The JSON line reports the peak
// memory: max RSS on the CPU (one setting per process, as it only grows;
// tests/trainer/checkpointing_memory.sh), the CUDA allocator's peak on a GPU.
//
// `--ranks N` (N > 1) measures data parallelism instead: one rank with one
// thread on the global batch, then N ranks with one thread each on shares of
// the same batch (ZeRO-1, gradient reduce-scatter), started as
// `mpiexec -n N clinrl bench learner --opt dp_child=1 ...` by this process;
// dp_speedup is the ratio of their step times. `--sharding zero3` also runs
// ZeRO-3 in the same ranks on the same batch: tokens/s against ZeRO-1, and
// the bytes each rank moves per step against 3x the parameters.
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "bench/bench_model.h"
#include "bench/bench_registry.h"
#include "bench/device_memory.h"
#include "bench/gemm_peak.h"
#include "core/error.h"
#include "distributed/communicator.h"
#include "policy/precision.h"
#include "policy/sampler.h"
#include "policy/transformer.h"
#include "trainer/data_parallel.h"
#include "trainer/policy_trainer.h"

namespace clinrl::bench {
namespace {

std::vector<trainer::TrainSequence> BenchBatch(
    const policy::ModelConfig& config, int64_t sequences, int64_t length,
    int64_t skew = 1) {
  if (skew < 1 || length / skew < 2) {
    throw BadRequest(fmt::format(
        "--opt skew={}: expected 1 or more, leaving at least 2 tokens of "
        "the length {}",
        skew, length));
  }
  // GRPO-shaped batch: random tokens, loss on the last 3/4 of each sequence,
  // sampling-time log-probs near the untrained model's, +/- advantages;
  // lengths uniform in [length / skew, length].
  policy::SequenceRng rng(7, 0);
  const int64_t shortest = length / skew;
  std::vector<trainer::TrainSequence> batch(static_cast<size_t>(sequences));
  for (int64_t i = 0; i < sequences; ++i) {
    trainer::TrainSequence& s = batch[static_cast<size_t>(i)];
    const int64_t n =
        skew == 1 ? length
                  : shortest + static_cast<int64_t>(rng.Next() %
                                                    static_cast<uint64_t>(
                                                        length - shortest + 1));
    const int64_t prompt = n / 4;  // masked context, as env turns are
    for (int64_t t = 0; t < n; ++t) {
      s.ids.push_back(static_cast<int64_t>(rng.Next() % config.vocab_size));
      s.loss_mask.push_back(t >= prompt ? 1 : 0);
      s.rollout_logprobs.push_back(
          t >= prompt ? -static_cast<float>(std::log(config.vocab_size))
                      : 0.0f);
    }
    s.advantage = i % 2 ? 1.0 : -1.0;
  }
  return batch;
}

struct StepTimes {
  double step_s = 0;       // one GrpoStep
  double optimizer_s = 0;  // of which: reduction, update, parameter gather
};

// Seconds per GrpoStep (after one warm-up step) of `learner` on `batch`; with
// a communicator, ranks start each step together and the slowest counts.
StepTimes SecondsPerStep(trainer::PolicyTrainer& learner,
                         const std::vector<trainer::TrainSequence>& batch,
                         int64_t steps, distributed::Communicator* comm) {
  learner.GrpoStep(batch, 0);  // warm-up: allocator, OpenMP pools
  if (comm) comm->Barrier();
  const auto t0 = std::chrono::steady_clock::now();
  double optimizer_s = 0;
  for (int64_t s = 0; s < steps; ++s) {
    optimizer_s += learner.GrpoStep(batch, 0).at("time/optimizer_s");
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  if (comm) {
    torch::Tensor t = torch::tensor({seconds, optimizer_s}, torch::kFloat64);
    comm->AllReduce(t, distributed::ReduceOp::kMax);
    seconds = t[0].item<double>();
    optimizer_s = t[1].item<double>();
  }
  return {seconds / static_cast<double>(steps),
          optimizer_s / static_cast<double>(steps)};
}

// The child side of --ranks: this process is one of the mpiexec'd ranks.
nlohmann::json RunDataParallelChild(const BenchOptions& options) {
  policy::SetComputeThreads(1);
  std::unique_ptr<distributed::Communicator> comm =
      distributed::MakeCommunicator("mpi", /*timeout_ms=*/600000);
  const policy::ModelConfig config = BenchModelConfig(options.quick);
  policy::Transformer model{policy::TransformerOptions(config)};
  model->ResetParameters(1);
  const auto batch = BenchBatch(config, IntOption(options, "sequences", 16),
                                IntOption(options, "length", 256));
  const auto [first, last] =
      trainer::BatchShare(batch.size(), comm->rank(), comm->size());
  const std::vector<trainer::TrainSequence> share(
      batch.begin() + static_cast<std::ptrdiff_t>(first),
      batch.begin() + static_cast<std::ptrdiff_t>(last));
  trainer::PolicyTrainerOptions o;
  o.micro_batch = IntOption(options, "micro_batch", 8);
  o.schedule = {1e-5, 0, 1000, 1.0};
  o.communicator = comm.get();
  const int64_t steps = IntOption(options, "steps", 3);
  trainer::PolicyTrainer learner(model, o);
  const StepTimes times = SecondsPerStep(learner, share, steps, comm.get());
  const int64_t state_bytes = learner.OptimizerStateBytes();
  nlohmann::json out = {{"dp_step_s", times.step_s},
                        {"dp_optimizer_s", times.optimizer_s},
                        {"ranks", comm->size()},
                        {"optimizer_state_bytes_rank0", state_bytes}};
  if (StringOption(options, "sharding", "zero1", {"zero1", "zero3"}) ==
      "zero3") {
    // ZeRO-3 on the same batch, in the same processes: a fresh model from
    // the same seed.
    policy::Transformer sharded_model{policy::TransformerOptions(config)};
    sharded_model->ResetParameters(1);
    o.sharding = trainer::Sharding::kZero3;
    trainer::PolicyTrainer sharded(sharded_model, o);
    const StepTimes zero3 = SecondsPerStep(sharded, share, steps, comm.get());
    // Every step (the warm-up one too) moves the same bytes.
    out["zero3_step_s"] = zero3.step_s;
    out["zero3_optimizer_s"] = zero3.optimizer_s;
    out["zero3_comm_bytes_per_step"] =
        sharded.zero3()->communicated_bytes() / (steps + 1);
    out["zero3_shard_bytes_rank0"] = sharded.zero3()->ShardBytes();
    out["zero3_peak_gathered_parameters"] =
        sharded.zero3()->peak_gathered_numel();
    out["zero3_root_parameters"] = sharded.zero3()->root_numel();
  }
  if (comm->rank() != 0) {
    std::cout.setstate(std::ios::failbit);  // rank 0 reports
    return {};
  }
  return out;
}

// The mpiexec command line that starts `ranks` children of this bench.
std::string ChildCommand(const BenchOptions& options, int64_t sequences,
                         int64_t length, int64_t steps, int64_t micro,
                         const std::string& sharding) {
  const char* launcher = std::getenv("CLINRL_MPIEXEC");
  std::string cmd = launcher ? launcher : "mpiexec";
  cmd += fmt::format(" -n {}", options.ranks);
  std::FILE* version = ::popen((cmd + " --version 2>&1").c_str(), "r");
  std::string text;
  if (version) {
    std::array<char, 256> chunk{};
    while (std::fgets(chunk.data(), static_cast<int>(chunk.size()), version))
      text += chunk.data();
    ::pclose(version);
  }
  if (text.find("Open MPI") != std::string::npos ||
      text.find("OpenRTE") != std::string::npos) {
    // Ranks may outnumber cores; pinning would stack them on one core.
    cmd += " --oversubscribe --bind-to none";
    if (::geteuid() == 0) cmd += " --allow-run-as-root";
  }
  cmd += fmt::format(
      " {} bench learner --threads 1 --opt dp_child=1 --opt sequences={} "
      "--opt length={} --opt steps={} --opt micro_batch={} "
      "--opt sharding={}{} 2>&1",
      SelfExecutable(), sequences, length, steps, micro, sharding,
      options.quick ? " --quick" : "");
  return cmd;
}

nlohmann::json RunDataParallelBench(const BenchOptions& options) {
  if (distributed::LaunchedUnderMpi()) {
    throw BadRequest(
        "bench learner --ranks N starts its own mpiexec; run it without "
        "mpirun");
  }
  const bool quick = options.quick;
  const int64_t sequences = IntOption(options, "sequences", quick ? 4 : 16);
  const int64_t length = IntOption(options, "length", quick ? 64 : 256);
  const int64_t steps = IntOption(options, "steps", quick ? 1 : 3);
  const int64_t micro = IntOption(options, "micro_batch", quick ? 4 : 8);
  if (sequences < options.ranks) {
    throw BadRequest(fmt::format(
        "--opt sequences={}: expected at least --ranks ({}) sequences",
        sequences, options.ranks));
  }
  policy::SetComputeThreads(1);
  const policy::ModelConfig config = BenchModelConfig(quick);
  policy::Transformer model{policy::TransformerOptions(config)};
  model->ResetParameters(1);
  const auto batch = BenchBatch(config, sequences, length);
  trainer::PolicyTrainerOptions o;
  o.micro_batch = micro;
  o.schedule = {1e-5, 0, 1000, 1.0};
  trainer::PolicyTrainer learner(model, o);
  const StepTimes single = SecondsPerStep(learner, batch, steps, nullptr);
  const double single_s = single.step_s;
  std::cout << "1 rank, 1 thread: " << single_s << " s per GRPO step of "
            << sequences << " x " << length << " tokens" << std::endl;

  const std::string sharding =
      StringOption(options, "sharding", "zero1", {"zero1", "zero3"});
  const std::string command =
      ChildCommand(options, sequences, length, steps, micro, sharding);
  std::cout << "running: " << command << std::endl;
  const nlohmann::json child =
      nlohmann::json::parse(LastLineOf(command), nullptr, false);
  if (child.is_discarded() || !child.contains("dp_step_s")) {
    throw InternalError(
        "bench learner --ranks: the mpiexec'd ranks printed no dp_step_s");
  }
  const double dp_s = child.at("dp_step_s").get<double>();
  std::cout << options.ranks << " ranks, 1 thread each: " << dp_s
            << " s per step" << std::endl;
  nlohmann::json out = {
      {"ranks", options.ranks},
      {"sharding", sharding},
      {"threads_per_rank", 1},
      {"parameters", config.ParameterCount()},
      {"batch_shape", {sequences, length}},
      {"micro_batch", micro},
      {"steps", steps},
      {"single_rank_step_s", single_s},
      {"dp_step_s", dp_s},
      {"single_rank_optimizer_s", single.optimizer_s},
      {"dp_optimizer_s", child.value("dp_optimizer_s", 0.0)},
      {"dp_speedup", single_s / dp_s},
      {"dp_efficiency", single_s / dp_s / options.ranks},
      {"optimizer_state_bytes_1_rank", learner.OptimizerStateBytes()},
      {"optimizer_state_bytes_rank0",
       child.value("optimizer_state_bytes_rank0", int64_t{0})},
      {"quick", quick}};
  if (sharding == "zero3") {
    if (!child.contains("zero3_step_s")) {
      throw InternalError(
          "bench learner --sharding zero3: the ranks printed no zero3_step_s");
    }
    // ZeRO-3 against ZeRO-1 on the same ranks and batch, and its traffic
    // against what it should be for one micro-batch per rank: the textbook
    // 3x the parameters per step (a gather for the forward, another for the
    // backward, a reduce-scatter of the gradients), less one gather of the
    // root unit, which stays whole from the forward through the backward.
    const double tokens = static_cast<double>(sequences * length);
    const double zero3_s = child.at("zero3_step_s").get<double>();
    const double param_bytes =
        4.0 * static_cast<double>(config.ParameterCount());
    const double comm_bytes =
        child.at("zero3_comm_bytes_per_step").get<double>();
    std::cout << options.ranks << " ranks, zero3: " << zero3_s
              << " s per step (zero1 " << dp_s << " s); "
              << comm_bytes / param_bytes
              << "x the parameter bytes communicated per step and rank"
              << std::endl;
    out["zero1_tokens_per_s"] = tokens / dp_s;
    out["zero3_tokens_per_s"] = tokens / zero3_s;
    out["zero3_vs_zero1_throughput"] = dp_s / zero3_s;
    out["zero3_step_s"] = zero3_s;
    out["zero3_optimizer_s"] = child.value("zero3_optimizer_s", 0.0);
    out["parameter_bytes"] = param_bytes;
    out["zero3_comm_bytes_per_step"] = comm_bytes;
    out["zero3_comm_vs_parameters"] = comm_bytes / param_bytes;
    const double root_bytes =
        4.0 * child.at("zero3_root_parameters").get<double>();
    const double theory = 3.0 - root_bytes / param_bytes;
    out["zero3_comm_theory_vs_parameters"] = theory;
    out["zero3_comm_matches_theory"] =
        std::abs(comm_bytes / param_bytes / theory - 1.0) < 1e-3;
    out["micro_batches_per_rank"] =
        (sequences / options.ranks + micro - 1) / micro;
    out["zero3_shard_bytes_rank0"] = child.at("zero3_shard_bytes_rank0");
    out["zero3_peak_gathered_parameters"] =
        child.at("zero3_peak_gathered_parameters");
  }
  return out;
}

// One setting of the single-process bench, measured on its own model copy.
struct LearnerRun {
  double seconds = 0;
  double tokens_per_s = 0;  // real (unpadded) tokens
  double gflops = 0;        // model FLOPs of the real tokens
  int64_t peak_memory = 0;
  double pad_fraction = 0;  // of the slots the forward computed
};

LearnerRun MeasureLearner(const policy::ModelConfig& config,
                          const torch::Device& device,
                          trainer::PolicyTrainerOptions o,
                          const std::vector<trainer::TrainSequence>& batch,
                          int64_t steps) {
  policy::Transformer model{policy::TransformerOptions(config)};
  model->ResetParameters(1);
  model->to(device);
  trainer::PolicyTrainer learner(model, o);
  ResetPeakMemory(device);
  learner.GrpoStep(batch, 0);  // warm-up: allocator, OpenMP pools, kernels
  SynchronizeDevice(device);
  const auto t0 = std::chrono::steady_clock::now();
  LearnerRun run;
  for (int64_t s = 0; s < steps; ++s) {
    run.pad_fraction = learner.GrpoStep(batch, 0).at("train/pad_fraction");
  }
  SynchronizeDevice(device);
  run.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  // Forward + backward = 3 forward passes of matrix products.
  double tokens = 0, flops = 0;
  for (const auto& seq : batch) {
    const double length = static_cast<double>(seq.ids.size());
    tokens += length;
    flops += 3.0 * SequenceForwardFlops(config, length);
  }
  run.tokens_per_s = tokens * static_cast<double>(steps) / run.seconds;
  run.gflops = flops * static_cast<double>(steps) / run.seconds / 1e9;
  run.peak_memory = PeakMemoryBytes(device);
  return run;
}

nlohmann::json RunLearnerBench(const BenchOptions& options) {
  if (options.extra.count("dp_child")) return RunDataParallelChild(options);
  if (options.ranks > 1) return RunDataParallelBench(options);
  if (options.ranks < 1) {
    throw BadRequest(
        fmt::format("--ranks {}: expected a positive integer", options.ranks));
  }
  const bool quick = options.quick;
  const ModelBenchSetup setup = SetUpModelBench(options);
  const torch::Device& device = setup.device;
  const std::string& precision_name = setup.precision_name;
  const policy::Precision precision = setup.precision;
  const int64_t threads = setup.threads;
  const GemmPeak& peak = setup.peak;
  const std::string packing =
      StringOption(options, "packing", "off", {"on", "off", "compare"});
  const bool checkpointing =
      StringOption(options, "checkpointing", "off", {"on", "off"}) == "on";
  const policy::ModelConfig config = BenchModel(options);
  const int64_t sequences = IntOption(options, "sequences", quick ? 4 : 16);
  const int64_t length = IntOption(options, "length", quick ? 64 : 256);
  const int64_t steps = IntOption(options, "steps", quick ? 1 : 3);
  // Lengths drawn from [length / skew, length]: packing pays off on skew.
  const int64_t skew = IntOption(options, "skew", packing == "off" ? 1 : 4);
  const std::vector<trainer::TrainSequence> batch =
      BenchBatch(config, sequences, length, skew);
  trainer::PolicyTrainerOptions o;
  o.micro_batch = IntOption(options, "micro_batch", quick ? 4 : 8);
  o.activation_checkpointing = checkpointing;
  o.precision = precision;
  o.schedule = {1e-5, 0, 1000, 1.0};
  std::cout << "model " << config.ParameterCount() << " parameters; "
            << sequences << " sequences of " << length / skew << ".." << length
            << " tokens, micro-batch " << o.micro_batch << ", "
            << precision_name << ", packing " << packing
            << ", activation checkpointing " << (checkpointing ? "on" : "off")
            << std::endl;

  nlohmann::json out = {
      {"device", device.str()},
      {"precision", precision_name},
      {"packing", packing},
      {"activation_checkpointing", checkpointing},
      {"threads", threads},
      {"parameters", config.ParameterCount()},
      {"batch_shape", {sequences, length}},
      {"length_skew", skew},
      {"micro_batch", o.micro_batch},
      {"steps", steps},
      {"gemm_peak_gflops", peak.gflops},
      {"gemm_peak", peak.ToJson()},
      {"quick", quick},
  };
  const auto report = [&](const LearnerRun& run, const std::string& what) {
    std::cout << what << ": " << steps << " GRPO steps in " << run.seconds
              << " s, " << run.tokens_per_s << " tokens/s, " << run.gflops
              << " GFLOP/s (" << run.gflops / peak.gflops << " of peak), "
              << run.pad_fraction << " of slots padding, peak "
              << (device.is_cuda() ? "CUDA allocated" : "resident")
              << " memory " << run.peak_memory / (1 << 20) << " MiB"
              << std::endl;
  };
  if (packing == "compare") {
    // Both layouts in one process: the ratio is what the machine's noise
    // does not move.
    o.packing = false;
    const LearnerRun padded = MeasureLearner(config, device, o, batch, steps);
    report(padded, "padded");
    o.packing = true;
    const LearnerRun packed = MeasureLearner(config, device, o, batch, steps);
    report(packed, "packed");
    out["padded_tokens_per_s"] = padded.tokens_per_s;
    out["packed_tokens_per_s"] = packed.tokens_per_s;
    out["packing_speedup"] = packed.tokens_per_s / padded.tokens_per_s;
    out["padded_pad_fraction"] = padded.pad_fraction;
    out["packed_pad_fraction"] = packed.pad_fraction;
    out["train_tokens_per_s"] = packed.tokens_per_s;
    out["train_gflops"] = packed.gflops;
    out["mfu"] = packed.gflops / peak.gflops;
    return out;
  }
  o.packing = packing == "on";
  const LearnerRun run = MeasureLearner(config, device, o, batch, steps);
  report(run, o.packing ? "packed" : "padded");
  out["train_tokens_per_s"] = run.tokens_per_s;
  out["train_gflops"] = run.gflops;
  out["train_fraction_of_peak"] = run.gflops / peak.gflops;
  out["mfu"] = run.gflops / peak.gflops;
  out["peak_memory_bytes"] = run.peak_memory;
  out["pad_fraction"] = run.pad_fraction;
  if (!device.is_cuda()) out["peak_rss_bytes"] = run.peak_memory;
  return out;
}

}  // namespace

CLINRL_REGISTER_BENCH(
    learner, "GRPO update throughput of the policy trainer", RunLearnerBench,
    {"precision", "fp32 or bf16 (mixed precision)"},
    {"packing", "on, off, or compare (both in one run: packing_speedup)"},
    {"checkpointing", "activation checkpointing: on or off"},
    {"sharding", "with --ranks: zero1, or zero3 (measured beside zero1)"},
    {"device", "cpu, cuda or cuda:N"},
    {"model", "a HF config.json or a run config with policy.init"});

}  // namespace clinrl::bench
