#include "policy/kv_cache.h"

#include <torch/torch.h>

#include "core/error.h"

namespace clinrl::policy {

KvCache::KvCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads,
                 int64_t capacity, int64_t head_dim, at::TensorOptions options)
    : batch_(batch), capacity_(capacity) {
  CLINRL_CHECK(num_layers > 0 && batch > 0 && capacity > 0,
               "KvCache: layers {}, batch {}, capacity {} must be > 0",
               num_layers, batch, capacity);
  keys_.reserve(num_layers);
  values_.reserve(num_layers);
  for (int64_t l = 0; l < num_layers; ++l) {
    keys_.push_back(
        torch::empty({batch, num_kv_heads, capacity, head_dim}, options));
    values_.push_back(
        torch::empty({batch, num_kv_heads, capacity, head_dim}, options));
  }
}

std::pair<at::Tensor, at::Tensor> KvCache::Append(int64_t layer,
                                                  const at::Tensor& k,
                                                  const at::Tensor& v) {
  const int64_t steps = k.size(2);
  CLINRL_CHECK(length_ + steps <= capacity_,
               "KvCache: {} slots used + {} new exceed the capacity {}",
               length_, steps, capacity_);
  CLINRL_CHECK(k.size(0) == batch_, "KvCache: batch {} given, cache holds {}",
               k.size(0), batch_);
  keys_[layer].narrow(2, length_, steps).copy_(k);
  values_[layer].narrow(2, length_, steps).copy_(v);
  return {keys_[layer].narrow(2, 0, length_ + steps),
          values_[layer].narrow(2, 0, length_ + steps)};
}

void KvCache::Advance(int64_t steps) { length_ += steps; }

void KvCache::KeepRows(const at::Tensor& rows) {
  // Only the filled prefix is copied; the new buffers keep the capacity so
  // later appends need no reallocation.
  for (size_t l = 0; l < keys_.size(); ++l) {
    for (auto* buffers : {&keys_, &values_}) {
      at::Tensor& old = (*buffers)[l];
      at::Tensor fresh = torch::empty(
          {rows.size(0), old.size(1), capacity_, old.size(3)}, old.options());
      if (length_ > 0) {
        fresh.narrow(2, 0, length_)
            .copy_(old.narrow(2, 0, length_).index_select(0, rows));
      }
      old = fresh;
    }
  }
  batch_ = rows.size(0);
}

}  // namespace clinrl::policy
