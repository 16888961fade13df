// The NCCL backend of Communicator: CUDA tensors go over NCCL, host tensors
// (small control values) over the MPI bootstrap. Compiled only when
// CLINRL_WITH_NCCL (LibTorch built with CUDA and NCCL found at configure
// time). An MPI communicator of the same ranks bootstraps it (the
// ncclUniqueId is broadcast over MPI) and carries the control data
// (BroadcastBytes). Collectives run on the current CUDA stream and are
// polled against the deadline; on expiry the NCCL communicator is aborted
// (ncclCommAbort) and a clinrl::Timeout names the rank, op and bytes.
#pragma once

#include <cstdint>
#include <memory>

#include "distributed/communicator.h"

namespace clinrl::distributed {

// `bootstrap` must be an MPI communicator (its ranks become the NCCL ranks).
// Each rank uses CUDA device (node-local rank) mod (visible devices).
std::unique_ptr<Communicator> MakeNcclCommunicator(
    std::unique_ptr<Communicator> bootstrap, int64_t timeout_ms);

}  // namespace clinrl::distributed
