// Run by ctest under `mpiexec -n 2`: rank 0 times out on a collective that
// rank 1 never joins (rank 1 waits in a barrier with no deadline, so it would
// hang forever) and ends the job with AbortJob. The test passes when mpiexec
// returns promptly and the output names the rank and the operation.
#include <iostream>

#include "core/error.h"
#include "distributed/communicator.h"

int main() {
  using namespace clinrl::distributed;
  std::unique_ptr<Communicator> world = MakeMpiCommunicator(/*timeout_ms=*/0);
  if (world->size() != 2) {
    std::cerr << "run this under mpiexec -n 2" << std::endl;
    return 2;
  }
  std::unique_ptr<Communicator> timed = MakeMpiCommunicator(500);
  if (world->rank() == 1) {
    world->Barrier();  // never completes: only MPI_Abort ends this rank
    std::cerr << "rank 1 left a barrier rank 0 never entered" << std::endl;
    return 1;
  }
  torch::Tensor t = torch::ones({16});
  try {
    timed->AllReduce(t, ReduceOp::kSum);
  } catch (const clinrl::Timeout& e) {
    AbortJob(e.what(), 3);
  }
  std::cerr << "rank 0: the all-reduce completed without rank 1" << std::endl;
  return 1;
}
