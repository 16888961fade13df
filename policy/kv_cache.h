// Preallocated key/value cache for batched decoding: one [B, Hkv, capacity, D]
// buffer per layer, filled slot by slot. All rows share the slot index (left-
// padded prompts), so one decode step writes one column for the whole batch;
// rows that finish are dropped by KeepRows so they stop costing compute.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace clinrl::policy {

// The keys and values of one sequence's first `length` tokens, [Hkv, length,
// D] per layer: what a multi-turn episode keeps between generation calls so
// that each turn prefills only its new tokens. Valid only for the weights
// that computed it.
struct SequenceKv {
  int64_t length = 0;
  std::vector<at::Tensor> keys;
  std::vector<at::Tensor> values;
};

class KvCache {
 public:
  KvCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads,
          int64_t capacity, int64_t head_dim, at::TensorOptions options);

  int64_t batch() const { return batch_; }
  int64_t length() const { return length_; }  // filled slots, every row
  int64_t capacity() const { return capacity_; }
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }

  // Writes k, v ([B, Hkv, T, D]) of `layer` into slots [length, length + T)
  // and returns views of slots [0, length + T). Call for every layer, then
  // Advance(T) once.
  std::pair<at::Tensor, at::Tensor> Append(int64_t layer, const at::Tensor& k,
                                           const at::Tensor& v);
  void Advance(int64_t steps);

  // Keeps only `rows` (int64 indices into the current batch), in that order.
  void KeepRows(const at::Tensor& rows);

  // Fills slots [0, end) of an empty cache: row b's sequence (may be null or
  // empty) ends at slot `end`, the slots before it are zeros (callers mask
  // them). Sets length() to `end`.
  void LoadRightAligned(const std::vector<const SequenceKv*>& rows,
                        int64_t end);

  // Row `row`'s keys and values at `slots` (int64 indices below length()).
  SequenceKv ExtractRow(int64_t row, const at::Tensor& slots) const;

 private:
  int64_t batch_;
  int64_t capacity_;
  int64_t length_ = 0;
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
};

}  // namespace clinrl::policy
