// The MPI backend of Communicator, for CPU tensors. Every collective is
// issued non-blocking and polled against the communicator's deadline, so a
// rank that crashed or skipped a call turns into a clinrl::Timeout naming the
// rank, the operation and the bytes instead of a hang. Large reductions and
// gathers run as a ring of point-to-point messages (reduce-scatter, then
// all-gather; the bandwidth-optimal schedule), which Open MPI's non-blocking
// collectives do not match in speed; small ones use MPI_Iallreduce.
//
// A timeout also names the peers the rank was waiting on and their hosts
// (MPI_Get_processor_name, gathered once when the world communicator is
// made and carried into every Split), since across nodes "rank 1" alone
// does not say which machine or link to look at.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "distributed/communicator.h"

namespace clinrl::distributed {

class MpiCommunicator : public Communicator {
 public:
  // Takes ownership of `comm` (freed in the destructor unless MPI has been
  // finalised). timeout_ms bounds every collective; 0 = none. `hosts` holds
  // each rank's host, for timeout messages (empty: not known).
  MpiCommunicator(MPI_Comm comm, int64_t timeout_ms,
                  std::vector<std::string> hosts = {});
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  void AllReduce(torch::Tensor& t, ReduceOp op) override;
  void ReduceScatter(const torch::Tensor& input, torch::Tensor& output,
                     ReduceOp op) override;
  void AllGather(const torch::Tensor& input, torch::Tensor& output) override;
  void Broadcast(torch::Tensor& t, int root) override;
  void BroadcastBytes(std::string& bytes, int root) override;
  void Barrier() override;
  // Ranks passing a negative color get nullptr (MPI_UNDEFINED).
  std::unique_ptr<Communicator> Split(int color, int key) override;

  MPI_Comm comm() const { return comm_; }
  int64_t timeout_ms() const { return timeout_ms_; }

 private:
  // Chunk i of a flat buffer is elements [bounds[i], bounds[i + 1]).
  using Bounds = std::vector<int64_t>;
  void RingReduceScatter(torch::Tensor& flat, const Bounds& bounds, ReduceOp op,
                         const char* what, double start);
  void RingAllGather(torch::Tensor& flat, const Bounds& bounds,
                     const char* what, double start);
  // Polls `requests` until all complete; past the deadline (start +
  // timeout), marks the communicator unusable and throws Timeout naming the
  // peers still waited on: `peers[i]` is the rank request i exchanges with,
  // none (empty) for a collective, which waits on every other rank.
  void WaitAll(std::vector<MPI_Request>& requests, const char* what,
               int64_t bytes, double start, const std::vector<int>& peers = {});
  // "rank 1 on host h1" for each rank of `ranks`.
  std::string DescribePeers(const std::vector<int>& ranks) const;
  void Check(int rc, const char* call, const char* what) const;
  void CheckUsable(const char* what) const;
  void CheckRoot(int root, const char* what) const;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  int64_t timeout_ms_ = 0;
  std::vector<std::string> hosts_;  // by rank; empty when not known
  // Set after a timeout: requests may still be pending on buffers, so the
  // communicator must not be used again (the caller aborts the job).
  std::string broken_;
  std::vector<torch::Tensor> abandoned_;  // buffers of timed-out requests
};

// Initialises MPI (MPI_THREAD_MULTIPLE requested, SERIALIZED required) once
// per process and registers MPI_Finalize at exit. Safe to call repeatedly.
void EnsureMpiInitialized();

}  // namespace clinrl::distributed
