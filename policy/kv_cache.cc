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

void KvCache::LoadRightAligned(const std::vector<const SequenceKv*>& rows,
                               int64_t end) {
  CLINRL_CHECK(length_ == 0, "KvCache: LoadRightAligned on a filled cache");
  CLINRL_CHECK(static_cast<int64_t>(rows.size()) == batch_,
               "KvCache: {} rows given, cache holds {}", rows.size(), batch_);
  CLINRL_CHECK(end >= 0 && end <= capacity_,
               "KvCache: end slot {} outside the capacity {}", end, capacity_);
  if (end == 0) return;
  for (size_t l = 0; l < keys_.size(); ++l) {
    // Unwritten slots must hold finite values: a masked score is a large
    // negative number, and garbage NaN would survive the mask.
    keys_[l].narrow(2, 0, end).zero_();
    values_[l].narrow(2, 0, end).zero_();
    for (int64_t b = 0; b < batch_; ++b) {
      const SequenceKv* kv = rows[b];
      if (kv == nullptr || kv->length == 0) continue;
      CLINRL_CHECK(kv->length <= end && kv->keys.size() == keys_.size() &&
                       kv->values.size() == keys_.size(),
                   "KvCache: row {} holds {} tokens in {} layers; expected at "
                   "most {} tokens in {} layers",
                   b, kv->length, kv->keys.size(), end, keys_.size());
      keys_[l][b].narrow(1, end - kv->length, kv->length).copy_(kv->keys[l]);
      values_[l][b]
          .narrow(1, end - kv->length, kv->length)
          .copy_(kv->values[l]);
    }
  }
  length_ = end;
}

SequenceKv KvCache::ExtractRow(int64_t row, const at::Tensor& slots) const {
  CLINRL_CHECK(row >= 0 && row < batch_, "KvCache: row {} of {}", row, batch_);
  SequenceKv kv;
  kv.length = slots.size(0);
  for (size_t l = 0; l < keys_.size(); ++l) {
    kv.keys.push_back(keys_[l][row].index_select(1, slots));
    kv.values.push_back(values_[l][row].index_select(1, slots));
  }
  return kv;
}

}  // namespace clinrl::policy
