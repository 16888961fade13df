// ZeRO stage 1: AdamW whose moments are split across the data-parallel
// ranks. The trainable parameters are laid out end to end as one flat
// vector, padded to a multiple of the rank count; rank r owns the contiguous
// shard [r * S, (r + 1) * S) and keeps exp_avg / exp_avg_sq only for it, so
// each rank holds about 1/N of AdamW's state. A step updates the owned shard
// from the reduced gradient shard, then all-gathers the parameters so every
// rank has the whole model again. The update is AdamW's (adamw.h), element
// for element, so N ranks reproduce one rank up to float32 rounding.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "distributed/communicator.h"
#include "trainer/adamw.h"

namespace clinrl::trainer {

// Where each trainable parameter lives in the flat vector.
struct FlatParameterLayout {
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;  // the model's tensors (updated in place)
  std::vector<int64_t> offsets;       // first flat element of each parameter
  int64_t numel = 0;                  // unpadded
  int64_t shard_size = 0;             // S = ceil(numel / ranks)
  int ranks = 1;

  FlatParameterLayout(std::vector<std::pair<std::string, torch::Tensor>> named,
                      int ranks);
  int64_t padded() const { return shard_size * ranks; }
  int64_t ShardBegin(int rank) const {
    return std::min(numel, shard_size * rank);
  }
  int64_t ShardEnd(int rank) const {
    return std::min(numel, shard_size * (rank + 1));
  }
};

class ShardedAdamW {
 public:
  // `comm` is the data-parallel group (must outlive this object).
  ShardedAdamW(std::vector<std::pair<std::string, torch::Tensor>> params,
               AdamWOptions options, distributed::Communicator& comm);

  // One update with learning rate `lr`. `grad_shard` [S] is this rank's
  // shard of the reduced (summed over ranks, then clipped) flat gradient;
  // `has_grad[i]` says whether parameter i got a gradient on any rank (a
  // parameter without one is left alone, moments too, as in AdamW). Ends with
  // the all-gather of the updated parameters.
  void Step(double lr, const torch::Tensor& grad_shard,
            const std::vector<bool>& has_grad);
  int64_t step() const { return step_; }
  const FlatParameterLayout& layout() const { return layout_; }
  int64_t shard_begin() const { return begin_; }
  int64_t shard_end() const { return end_; }
  // Bytes of the moments this rank holds (about AdamW::StateBytes() / N).
  int64_t StateBytes() const;

  // Checkpoints. Every rank writes its shard as
  // optimizer.shard-RRRRR-of-NNNNN.safetensors into `dir`; rank 0 also writes
  // optimizer_layout.json (ranks, parameter names and sizes, step).
  void SaveShard(const std::string& dir) const;
  // Restores from the shard files of a checkpoint written with any number of
  // ranks: each rank reads the byte ranges of the old shards that overlap
  // its new one. Throws BadRequest naming a parameter whose name or size
  // differs from the checkpoint's, or a missing shard file.
  void LoadShards(const std::string& dir);
  // Restores from AdamW::StateTensors() names (an unsharded checkpoint).
  void LoadFullState(const std::map<std::string, torch::Tensor>& state,
                     int64_t step);

 private:
  FlatParameterLayout layout_;
  AdamWOptions options_;
  distributed::Communicator& comm_;
  int64_t begin_ = 0, end_ = 0;         // owned flat range
  torch::Tensor exp_avg_, exp_avg_sq_;  // [end_ - begin_]
  int64_t step_ = 0;
};

}  // namespace clinrl::trainer
