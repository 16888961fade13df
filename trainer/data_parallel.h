// Data-parallel pieces of the learner: which share of the global batch a rank
// trains on, and the gradient reduction of ZeRO-1 (flatten, bucketed
// reduce-scatter, global norm).
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "distributed/communicator.h"
#include "trainer/sharded_adamw.h"

namespace clinrl::trainer {

// The contiguous share [first, last) of `count` items that `rank` of `ranks`
// takes; shares differ in size by at most one.
std::pair<size_t, size_t> BatchShare(size_t count, int rank, int ranks);

struct ReducedGradients {
  torch::Tensor shard;         // [shard_size]: this rank's summed gradient
  std::vector<bool> has_grad;  // per parameter: a gradient on any rank
  double norm = 0.0;           // L2 norm of the whole summed gradient
  bool loss_finite = true;     // every rank's share of the loss was finite
};

// Sums `flat` [N * S] over the N ranks of `comm` and leaves rank r's part
// [r * S, (r + 1) * S) of the sum in `shard` [S] (same dtype), moving at most
// `bucket_bytes` per collective.
void ReduceScatterFlat(const torch::Tensor& flat, torch::Tensor& shard,
                       distributed::Communicator& comm, int64_t bucket_bytes);

// Flattens the parameters' .grad() into the layout's padded flat vector and
// reduce-scatters it (sum over ranks) in buckets of at most `bucket_bytes`,
// so each rank receives only the shard it updates; then one small
// all-reduce gives every rank the global gradient norm (exact: the sum of
// the shards' squares), which parameters had gradients anywhere, and whether
// any rank's `local_loss_finite` was false, so that every rank takes the same
// decision about a non-finite step (non_finite.h). `reduce_dtype` bfloat16
// halves the bytes on the wire; the returned shard has the parameters' dtype.
ReducedGradients ReduceScatterGradients(
    const FlatParameterLayout& layout, distributed::Communicator& comm,
    int64_t bucket_bytes, bool local_loss_finite = true,
    torch::ScalarType reduce_dtype = torch::kFloat32);

}  // namespace clinrl::trainer
