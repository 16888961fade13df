// `clinrl bench learner`: GRPO updates (PolicyTrainer::GrpoStep: forward,
// clipped-surrogate loss, backward, clipping, AdamW) on the ~22M-parameter
// bench model, reported as tokens/s and GFLOP/s next to the float32 GEMM
// peak measured in the same run.
#include <chrono>
#include <cmath>
#include <iostream>

#include "bench/bench_model.h"
#include "bench/bench_registry.h"
#include "bench/gemm_peak.h"
#include "policy/sampler.h"
#include "policy/transformer.h"
#include "trainer/policy_trainer.h"

namespace clinrl::bench {
namespace {

nlohmann::json RunLearnerBench(const BenchOptions& options) {
  const bool quick = options.quick;
  const int64_t threads = policy::SetComputeThreads(options.threads);
  const GemmPeak peak = MeasureGemmPeak(threads);
  std::cout << "threads " << threads << ", float32 GEMM peak " << peak.gflops
            << " GFLOP/s" << std::endl;

  const policy::ModelConfig config = BenchModelConfig(quick);
  policy::Transformer model{policy::TransformerOptions(config)};
  model->ResetParameters(1);
  const int64_t sequences = IntOption(options, "sequences", quick ? 4 : 16);
  const int64_t length = IntOption(options, "length", quick ? 64 : 256);
  const int64_t prompt = length / 4;  // masked context, as env turns are
  const int64_t steps = IntOption(options, "steps", quick ? 1 : 3);

  // GRPO-shaped batch: random tokens, loss on the last 3/4 of each sequence,
  // sampling-time log-probs near the untrained model's, +/- advantages.
  policy::SequenceRng rng(7, 0);
  std::vector<trainer::TrainSequence> batch(static_cast<size_t>(sequences));
  for (int64_t i = 0; i < sequences; ++i) {
    trainer::TrainSequence& s = batch[static_cast<size_t>(i)];
    for (int64_t t = 0; t < length; ++t) {
      s.ids.push_back(static_cast<int64_t>(rng.Next() % config.vocab_size));
      s.loss_mask.push_back(t >= prompt ? 1 : 0);
      s.rollout_logprobs.push_back(
          t >= prompt ? -static_cast<float>(std::log(config.vocab_size))
                      : 0.0f);
    }
    s.advantage = i % 2 ? 1.0 : -1.0;
  }
  trainer::PolicyTrainerOptions o;
  o.micro_batch = IntOption(options, "micro_batch", quick ? 4 : 8);
  o.schedule = {1e-5, 0, 1000, 1.0};
  trainer::PolicyTrainer learner(model, o);

  learner.GrpoStep(batch, 0);  // warm-up: allocator, OpenMP pools
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < steps; ++s) learner.GrpoStep(batch, 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();

  // Forward + backward = 3 forward passes of matrix products.
  const double step_flops =
      3.0 * sequences *
      SequenceForwardFlops(config, static_cast<double>(length));
  const double tokens = static_cast<double>(sequences * length * steps);
  const double gflops = step_flops * steps / seconds / 1e9;
  std::cout << steps << " GRPO steps of " << sequences << " x " << length
            << " tokens in " << seconds << " s: " << gflops << " GFLOP/s ("
            << gflops / peak.gflops << " of peak)" << std::endl;
  return {
      {"threads", threads},
      {"parameters", config.ParameterCount()},
      {"batch_shape", {sequences, length}},
      {"micro_batch", o.micro_batch},
      {"steps", steps},
      {"train_tokens_per_s", tokens / seconds},
      {"train_gflops", gflops},
      {"gemm_peak_gflops", peak.gflops},
      {"train_fraction_of_peak", gflops / peak.gflops},
      {"quick", quick},
  };
}

}  // namespace

CLINRL_REGISTER_BENCH(learner, "GRPO update throughput of the policy trainer",
                      RunLearnerBench);

}  // namespace clinrl::bench
