// `clinrl bench allreduce` (under `mpirun -n N`): a float32 all-reduce of
// 64 MiB through distributed::Communicator against plain MPI_Allreduce on
// the same buffer, interleaved iteration by iteration so both see the same
// machine load. Bus bandwidth as nccl-tests define it: bytes x 2(n-1)/n over
// the time of one all-reduce. Only rank 0 prints.
#include <mpi.h>

#include <iostream>
#include <vector>

#include "bench/bench_registry.h"
#include "core/error.h"
#include "core/monotonic_clock.h"
#include "distributed/communicator.h"
#include "policy/transformer.h"

namespace clinrl::bench {
namespace {

void CheckMpi(int rc, const char* call) {
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(rc, text, &length);
    throw InternalError(
        fmt::format("{} failed: {}", call, std::string(text, length)));
  }
}

nlohmann::json RunAllreduceBench(const BenchOptions& options) {
  // One thread per rank for the ring's reductions, as MPI's own.
  const int64_t threads =
      policy::SetComputeThreads(options.threads > 0 ? options.threads : 1);
  std::unique_ptr<distributed::Communicator> comm =
      distributed::MakeCommunicator("mpi", /*timeout_ms=*/600000);
  const int n = comm->size();
  const bool root = comm->rank() == 0;
  if (n < 2) {
    throw BadRequest(
        "bench allreduce: 1 rank; run it under `mpirun -n 2` (or more)");
  }
  const int64_t mib = IntOption(options, "mib", options.quick ? 4 : 64);
  const int64_t iters = IntOption(options, "iters", options.quick ? 3 : 20);
  const int64_t warmup = options.quick ? 1 : 3;
  if (mib < 1 || iters < 1) {
    throw BadRequest(fmt::format(
        "--opt mib={} iters={}: expected positive integers", mib, iters));
  }
  const int64_t bytes = mib << 20;
  const int64_t numel = bytes / 4;
  torch::Tensor buffer = torch::ones({numel}, torch::kFloat32);

  // Correctness first: the sum of n ones is n, on both paths.
  comm->AllReduce(buffer, distributed::ReduceOp::kSum);
  CLINRL_CHECK(buffer[numel - 1].item<float>() == static_cast<float>(n),
               "Communicator all-reduce gave {}, expected {}",
               buffer[numel - 1].item<float>(), n);
  buffer.fill_(1.0f);
  CheckMpi(
      MPI_Allreduce(MPI_IN_PLACE, buffer.data_ptr(), static_cast<int>(numel),
                    MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
      "MPI_Allreduce");
  CLINRL_CHECK(buffer[0].item<float>() == static_cast<float>(n),
               "MPI_Allreduce gave {}, expected {}", buffer[0].item<float>(),
               n);

  std::vector<double> ours, raw;
  for (int64_t i = 0; i < warmup + iters; ++i) {
    buffer.fill_(1.0f);
    comm->Barrier();
    double start = MonotonicSeconds();
    comm->AllReduce(buffer, distributed::ReduceOp::kSum);
    const double ours_s = MonotonicSeconds() - start;
    buffer.fill_(1.0f);
    comm->Barrier();
    start = MonotonicSeconds();
    CheckMpi(
        MPI_Allreduce(MPI_IN_PLACE, buffer.data_ptr(), static_cast<int>(numel),
                      MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
        "MPI_Allreduce");
    const double raw_s = MonotonicSeconds() - start;
    if (i >= warmup) {
      ours.push_back(ours_s);
      raw.push_back(raw_s);
    }
  }
  // The slowest rank's time is the collective's time.
  torch::Tensor times = torch::tensor(
      {Percentile(ours, 0.5), Percentile(raw, 0.5)}, torch::kFloat64);
  comm->AllReduce(times, distributed::ReduceOp::kMax);
  const double ours_s = times[0].item<double>();
  const double raw_s = times[1].item<double>();
  const double factor = 2.0 * (n - 1) / n;
  const double busbw = static_cast<double>(bytes) * factor / ours_s / 1e9;
  const double raw_busbw = static_cast<double>(bytes) * factor / raw_s / 1e9;
  if (!root) {
    // The runner prints the figures on every rank; rank 0's line is the one.
    std::cout.setstate(std::ios::failbit);
    return {};
  }
  std::cout << n << " ranks, " << mib << " MiB float32, median of " << iters
            << ": Communicator " << ours_s * 1e3 << " ms (" << busbw
            << " GB/s bus), MPI_Allreduce " << raw_s * 1e3 << " ms ("
            << raw_busbw << " GB/s bus)" << std::endl;
  return {{"ranks", n},
          {"threads_per_rank", threads},
          {"bytes", bytes},
          {"iters", iters},
          {"time_ms", ours_s * 1e3},
          {"mpi_raw_time_ms", raw_s * 1e3},
          {"busbw_gbps", busbw},
          {"mpi_raw_busbw_gbps", raw_busbw},
          {"ratio", busbw / raw_busbw},
          {"backend", comm->backend()},
          {"quick", options.quick}};
}

}  // namespace

CLINRL_REGISTER_BENCH(allreduce,
                      "float32 all-reduce bus bandwidth: Communicator vs "
                      "MPI_Allreduce (run under mpirun -n 2)",
                      RunAllreduceBench);

}  // namespace clinrl::bench
