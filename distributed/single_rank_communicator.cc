#include "distributed/single_rank_communicator.h"

#include "core/error.h"

namespace clinrl::distributed {

namespace {
void CheckRoot(int root, const char* op) {
  if (root != 0) {
    throw BadRequest(fmt::format(
        "{}: root {} is not a rank of a 1-rank communicator (expected 0)", op,
        root));
  }
}
void CheckSameNumel(const torch::Tensor& input, const torch::Tensor& output,
                    const char* op) {
  if (input.numel() != output.numel() ||
      input.scalar_type() != output.scalar_type()) {
    throw BadRequest(fmt::format(
        "{}: output has {} elements of {}, expected {} of {} (1 rank)", op,
        output.numel(), c10::toString(output.scalar_type()), input.numel(),
        c10::toString(input.scalar_type())));
  }
}
}  // namespace

void SingleRankCommunicator::AllReduce(torch::Tensor& t, ReduceOp op) {
  CheckCollectiveTensor(t, "AllReduce", "tensor");
}

void SingleRankCommunicator::ReduceScatter(const torch::Tensor& input,
                                           torch::Tensor& output, ReduceOp op) {
  CheckCollectiveTensor(input, "ReduceScatter", "input");
  CheckCollectiveTensor(output, "ReduceScatter", "output");
  CheckSameNumel(input, output, "ReduceScatter");
  torch::NoGradGuard no_grad;
  output.view(-1).copy_(input.view(-1));
}

void SingleRankCommunicator::AllGather(const torch::Tensor& input,
                                       torch::Tensor& output) {
  CheckCollectiveTensor(input, "AllGather", "input");
  CheckCollectiveTensor(output, "AllGather", "output");
  CheckSameNumel(input, output, "AllGather");
  torch::NoGradGuard no_grad;
  output.view(-1).copy_(input.view(-1));
}

void SingleRankCommunicator::Broadcast(torch::Tensor& t, int root) {
  CheckCollectiveTensor(t, "Broadcast", "tensor");
  CheckRoot(root, "Broadcast");
}

void SingleRankCommunicator::BroadcastBytes(std::string& bytes, int root) {
  CheckRoot(root, "BroadcastBytes");
}

std::unique_ptr<Communicator> SingleRankCommunicator::Split(int color,
                                                            int key) {
  return std::make_unique<SingleRankCommunicator>();
}

}  // namespace clinrl::distributed
