// This process's rank among the ranks of its node, as the launcher tells it
// (Open MPI, MPICH, Slurm or torchrun variables); 0 when launched alone. Each
// rank of a node takes GPU (local rank mod visible GPUs).
#pragma once

namespace clinrl {

int NodeLocalRank();

}  // namespace clinrl
