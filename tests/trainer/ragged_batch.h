// The global batch of the data-parallel trainer tests (ZeRO-1 and ZeRO-3)
// and each rank's share of it.
#pragma once

#include <vector>

#include "distributed/communicator.h"
#include "trainer/data_parallel.h"
#include "trainer/policy_trainer.h"

namespace clinrl::trainer::testing {

// Ragged sequences with different numbers of trained tokens, so that a rank
// normalising by its own token count instead of the global one would weigh
// tokens differently and fail the comparison. 7 of them split 4/3 over 2
// ranks and 2/2/3 over 3: with 2 per micro-batch the ranks run different
// numbers of micro-batches.
inline std::vector<TrainSequence> GlobalBatch(int step, int count = 7) {
  std::vector<TrainSequence> batch;
  for (int i = 0; i < count; ++i) {
    TrainSequence s;
    const int length = 5 + (3 * i + step) % 11;
    const int prompt = 2 + i % 3;
    for (int t = 0; t < length; ++t) {
      s.ids.push_back((7 * i + 3 * t + 11 * step) % 50);
      s.loss_mask.push_back(t >= prompt ? 1 : 0);
      s.rollout_logprobs.push_back(t >= prompt ? -3.9f + 0.01f * t : 0.0f);
    }
    s.advantage = (i % 3 == 0 ? 1.0 : -0.7) * (1 + 0.1 * i);
    batch.push_back(s);
  }
  return batch;
}

// This rank's share (BatchShare) of `batch`.
inline std::vector<TrainSequence> ShareOf(
    const std::vector<TrainSequence>& batch,
    const distributed::Communicator& comm) {
  const auto [first, last] = BatchShare(batch.size(), comm.rank(), comm.size());
  return {batch.begin() + static_cast<std::ptrdiff_t>(first),
          batch.begin() + static_cast<std::ptrdiff_t>(last)};
}

}  // namespace clinrl::trainer::testing
