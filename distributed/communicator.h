// Collective operations between the ranks of a job (learner ranks all-reduce
// gradients and all-gather ZeRO-1 shards through it). One interface, three
// backends: a single process, MPI on CPU tensors, NCCL on CUDA tensors.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

namespace clinrl::distributed {

// kMax is for control values (the longest sequence, a "stale" flag).
enum class ReduceOp { kSum, kAvg, kMax };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"
  // In place, on a contiguous float32 or bfloat16 tensor (CPU for mpi, CUDA
  // for nccl).
  virtual void AllReduce(torch::Tensor& t, ReduceOp op) = 0;
  // input numel = size() * output numel; output gets this rank's reduced chunk.
  virtual void ReduceScatter(const torch::Tensor& input, torch::Tensor& output,
                             ReduceOp op) = 0;
  // output numel = size() * input numel; chunks in rank order.
  virtual void AllGather(const torch::Tensor& input, torch::Tensor& output) = 0;
  virtual void Broadcast(torch::Tensor& t, int root) = 0;
  // For small control data (JSON headers, checkpoint metadata).
  virtual void BroadcastBytes(std::string& bytes, int root) = 0;
  virtual void Barrier() = 0;
  // Sub-communicator of the ranks with the same color (e.g. the learner
  // ranks); key orders them.
  virtual std::unique_ptr<Communicator> Split(int color, int key) = 0;
};

// Timeout in ms for every collective; 0 = none. On expiry: throws
// clinrl::Timeout naming rank, op, size, then the caller aborts (MPI_Abort) so
// no rank hangs.
std::unique_ptr<Communicator> MakeSingleRankCommunicator();
// MPI_COMM_WORLD; initialises MPI once (MPI_Finalize runs at exit).
std::unique_ptr<Communicator> MakeMpiCommunicator(int64_t timeout_ms);
// backend: "auto" (mpi when LaunchedUnderMpi(), else single), "single", "mpi",
// "nccl".
std::unique_ptr<Communicator> MakeCommunicator(const std::string& backend,
                                               int64_t timeout_ms);
// OMPI_COMM_WORLD_SIZE / PMI_SIZE / SLURM env vars present.
bool LaunchedUnderMpi();

// Throws BadRequest naming `op`, `arg` and the tensor's dtype/layout unless `t`
// is defined, contiguous, and of a dtype the collectives carry (float32,
// bfloat16, float64, int64). Shared by the backends.
void CheckCollectiveTensor(const torch::Tensor& t, const char* op,
                           const char* arg);
const char* ReduceOpName(ReduceOp op);

// Ends every rank of the job after a collective failed or timed out (MPI_Abort
// when MPI is initialised, std::abort otherwise); logs `why` first.
[[noreturn]] void AbortJob(const std::string& why, int exit_code = 1);

}  // namespace clinrl::distributed
