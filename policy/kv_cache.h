// Preallocated key/value cache for a batch of rows that share their slot
// index: one [B, Hkv, capacity, D] buffer per layer, filled slot by slot
// (Transformer::Hidden's incremental form; the generation engine uses the
// paged cache instead, policy/paged_kv_cache.h). KeepRows drops rows.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace clinrl::policy {

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

 private:
  int64_t batch_;
  int64_t capacity_;
  int64_t length_ = 0;
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
};

}  // namespace clinrl::policy
