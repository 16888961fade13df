#include "core/local_rank.h"

#include <cstdlib>
#include <initializer_list>

namespace clinrl {

int NodeLocalRank() {
  for (const char* var : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                          "SLURM_LOCALID", "LOCAL_RANK"}) {
    if (const char* value = std::getenv(var)) return std::atoi(value);
  }
  return 0;
}

}  // namespace clinrl
