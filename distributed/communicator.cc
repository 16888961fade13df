#include "distributed/communicator.h"

#ifdef CLINRL_WITH_MPI
#include <mpi.h>
#endif

#include <cstdlib>
#include <iostream>

#include "core/error.h"
#include "core/log.h"
#include "distributed/single_rank_communicator.h"

#ifdef CLINRL_WITH_NCCL
#include "distributed/nccl_communicator.h"
#endif

namespace clinrl::distributed {

void CheckCollectiveTensor(const torch::Tensor& t, const char* op,
                           const char* arg) {
  if (!t.defined()) {
    throw BadRequest(fmt::format("{}: {} is an undefined tensor", op, arg));
  }
  const auto dtype = t.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 &&
      dtype != torch::kFloat64 && dtype != torch::kInt64) {
    throw BadRequest(fmt::format(
        "{}: {} has dtype {}, expected float32, bfloat16, float64 or int64", op,
        arg, c10::toString(dtype)));
  }
  if (!t.is_contiguous()) {
    throw BadRequest(fmt::format(
        "{}: {} is not contiguous (collectives work in place on one buffer)",
        op, arg));
  }
}

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
  }
  return "?";
}

std::unique_ptr<Communicator> MakeSingleRankCommunicator() {
  return std::make_unique<SingleRankCommunicator>();
}

bool LaunchedUnderMpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK",
                          "SLURM_STEP_NUM_TASKS"}) {
    if (std::getenv(var) != nullptr) return true;
  }
  return false;
}

std::unique_ptr<Communicator> MakeCommunicator(const std::string& backend,
                                               int64_t timeout_ms) {
  if (timeout_ms < 0) {
    throw ConfigError(fmt::format(
        "communicator timeout_ms {}: expected >= 0 (0 = no timeout)",
        timeout_ms));
  }
  if (backend == "single") return MakeSingleRankCommunicator();
#ifndef CLINRL_WITH_MPI
  if (backend == "auto" && !LaunchedUnderMpi()) {
    return MakeSingleRankCommunicator();
  }
  throw ConfigError(fmt::format(
      "communicator backend '{}': this build has no MPI (configured with "
      "CLINRL_WITH_MPI=OFF); use 'single'",
      backend));
#else
  if (backend == "mpi") return MakeMpiCommunicator(timeout_ms);
  if (backend == "nccl") {
#ifdef CLINRL_WITH_NCCL
    return MakeNcclCommunicator(MakeMpiCommunicator(timeout_ms), timeout_ms);
#else
    throw ConfigError(
        "communicator backend 'nccl': this build has no NCCL (it needs "
        "LibTorch with CUDA and nccl.h/libnccl at configure time); use 'mpi' "
        "or 'single'");
#endif
  }
  if (backend == "auto") {
    if (!LaunchedUnderMpi()) return MakeSingleRankCommunicator();
#ifdef CLINRL_WITH_NCCL
    if (torch::cuda::is_available()) {
      return MakeNcclCommunicator(MakeMpiCommunicator(timeout_ms), timeout_ms);
    }
#endif
    return MakeMpiCommunicator(timeout_ms);
  }
  throw ConfigError(fmt::format(
      "communicator backend '{}': expected one of auto, single, mpi, nccl",
      backend));
#endif
}

void AbortJob(const std::string& why, int exit_code) {
  CLINRL_LOG_ERROR("aborting the job: {}", why);
  std::cerr << "clinrl: aborting the job: " << why << std::endl;
#ifdef CLINRL_WITH_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
#endif
  std::_Exit(exit_code);
}

}  // namespace clinrl::distributed
