// The communicator of a job with one process: every collective is the
// identity (or a copy), so code written for N ranks runs unchanged on one.
#pragma once

#include <memory>
#include <string>

#include "distributed/communicator.h"

namespace clinrl::distributed {

class SingleRankCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void AllReduce(torch::Tensor& t, ReduceOp op) override;
  void ReduceScatter(const torch::Tensor& input, torch::Tensor& output,
                     ReduceOp op) override;
  void AllGather(const torch::Tensor& input, torch::Tensor& output) override;
  void Broadcast(torch::Tensor& t, int root) override;
  void BroadcastBytes(std::string& bytes, int root) override;
  void Barrier() override {}
  std::unique_ptr<Communicator> Split(int color, int key) override;
};

}  // namespace clinrl::distributed
