// A temporary folder that every rank of a data-parallel trainer test (ZeRO-1
// and ZeRO-3, under mpiexec) writes into: rank 0 names and creates it, the
// others learn its path, so a sharded checkpoint's files meet in one place.
#pragma once

#include <string>

#include "distributed/communicator.h"

namespace clinrl::trainer::testing {

// $TMPDIR/clinrl_<tag>_<rank 0's pid>, emptied and created by rank 0 and
// broadcast to the ranks of `comm` (collective). The caller removes it.
std::string SharedTempDir(distributed::Communicator& comm,
                          const std::string& tag);

}  // namespace clinrl::trainer::testing
