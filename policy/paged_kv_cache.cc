#include "policy/paged_kv_cache.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"

namespace clinrl::policy {

PagedKvCache::PagedKvCache(int64_t num_layers, int64_t num_kv_heads,
                           int64_t head_dim, int64_t block_size,
                           int64_t initial_blocks, at::TensorOptions options)
    : block_size_(block_size), capacity_blocks_(initial_blocks) {
  CLINRL_CHECK(num_layers > 0 && block_size > 0 && initial_blocks > 0,
               "PagedKvCache: layers {}, block size {}, blocks {} must be > 0",
               num_layers, block_size, initial_blocks);
  for (int64_t l = 0; l < num_layers; ++l) {
    keys_.push_back(torch::zeros(
        {initial_blocks * block_size, num_kv_heads, head_dim}, options));
    values_.push_back(torch::zeros_like(keys_.back()));
  }
  refs_.assign(initial_blocks, 0);
  for (int64_t b = initial_blocks - 1; b >= 0; --b) free_.push_back(b);
}

PagedKvCache::Sequence& PagedKvCache::Get(int64_t sequence) {
  auto it = sequences_.find(sequence);
  CLINRL_CHECK(it != sequences_.end(), "PagedKvCache: no sequence {}",
               sequence);
  return it->second;
}

const PagedKvCache::Sequence& PagedKvCache::Get(int64_t sequence) const {
  auto it = sequences_.find(sequence);
  CLINRL_CHECK(it != sequences_.end(), "PagedKvCache: no sequence {}",
               sequence);
  return it->second;
}

int64_t PagedKvCache::CreateSequence() {
  sequences_[next_sequence_] = Sequence();
  return next_sequence_++;
}

void PagedKvCache::ReleaseSequence(int64_t sequence) {
  Sequence& s = Get(sequence);
  for (int64_t block : s.blocks) Unref(block);
  sequences_.erase(sequence);
}

int64_t PagedKvCache::Length(int64_t sequence) const {
  return Get(sequence).length;
}

void PagedKvCache::Truncate(int64_t sequence, int64_t length) {
  Sequence& s = Get(sequence);
  CLINRL_CHECK(length >= 0 && length <= s.length,
               "PagedKvCache: truncating {} tokens to {}", s.length, length);
  const int64_t keep = (length + block_size_ - 1) / block_size_;
  while (static_cast<int64_t>(s.blocks.size()) > keep) {
    Unref(s.blocks.back());
    s.blocks.pop_back();
  }
  s.length = length;
  // A block now partly held will be written again, so it may no longer be
  // found under its old tokens by this sequence's registrations.
  s.registered_blocks = std::min(s.registered_blocks, length / block_size_);
}

int64_t PagedKvCache::AllocateBlock() {
  if (free_.empty()) Grow();
  const int64_t block = free_.back();
  free_.pop_back();
  refs_[block] = 1;
  in_use_ += 1;
  peak_in_use_ = std::max(peak_in_use_, in_use_);
  return block;
}

void PagedKvCache::Unref(int64_t block) {
  CLINRL_CHECK(refs_[block] > 0, "PagedKvCache: block {} is not in use", block);
  if (--refs_[block] > 0) return;
  auto key = key_of_.find(block);
  if (key != key_of_.end()) {
    registry_.erase(key->second);
    key_of_.erase(key);
  }
  free_.push_back(block);
  in_use_ -= 1;
}

void PagedKvCache::Grow() {
  const int64_t old = capacity_blocks_;
  for (auto* pool : {&keys_, &values_}) {
    for (at::Tensor& t : *pool) {
      at::Tensor bigger = torch::zeros(
          {2 * old * block_size_, t.size(1), t.size(2)}, t.options());
      bigger.narrow(0, 0, t.size(0)).copy_(t);
      t = bigger;
    }
  }
  capacity_blocks_ = 2 * old;
  refs_.resize(capacity_blocks_, 0);
  for (int64_t b = capacity_blocks_ - 1; b >= old; --b) free_.push_back(b);
}

int64_t PagedKvCache::AdoptRegisteredPrefix(int64_t sequence,
                                            const std::vector<int64_t>& tokens,
                                            int64_t limit) {
  Sequence& s = Get(sequence);
  CLINRL_CHECK(s.length == 0, "PagedKvCache: adopting into a sequence of {}",
               s.length);
  limit = std::min<int64_t>(limit, static_cast<int64_t>(tokens.size()));
  int64_t parent = -1;
  while (s.length + block_size_ <= limit) {
    BlockKey key{parent,
                 std::vector<int64_t>(tokens.begin() + s.length,
                                      tokens.begin() + s.length + block_size_)};
    auto it = registry_.find(key);
    if (it == registry_.end()) break;
    const int64_t block = it->second;
    refs_[block] += 1;
    s.blocks.push_back(block);
    s.length += block_size_;
    s.registered_blocks += 1;
    shared_tokens_ += block_size_;
    parent = block;
  }
  return s.length;
}

std::pair<int64_t, std::vector<int64_t>> PagedKvCache::NextBlockKey(
    int64_t sequence, const std::vector<int64_t>& tokens) const {
  const Sequence& s = Get(sequence);
  const int64_t first = (s.length / block_size_) * block_size_;
  const int64_t parent = first == 0 ? -1 : s.blocks[first / block_size_ - 1];
  if (first + block_size_ > static_cast<int64_t>(tokens.size())) {
    return {parent, {}};
  }
  return {parent, std::vector<int64_t>(tokens.begin() + first,
                                       tokens.begin() + first + block_size_)};
}

void PagedKvCache::RegisterFullBlocks(int64_t sequence,
                                      const std::vector<int64_t>& tokens) {
  Sequence& s = Get(sequence);
  const int64_t full = s.length / block_size_;
  for (int64_t i = s.registered_blocks; i < full; ++i) {
    const int64_t block = s.blocks[i];
    if (key_of_.count(block) > 0) continue;  // adopted, already registered
    BlockKey key{i == 0 ? -1 : s.blocks[i - 1],
                 std::vector<int64_t>(tokens.begin() + i * block_size_,
                                      tokens.begin() + (i + 1) * block_size_)};
    if (registry_.count(key) > 0) continue;  // another copy holds them
    key_of_[block] = key;
    registry_.emplace(std::move(key), block);
  }
  s.registered_blocks = full;
}

void PagedKvCache::Extend(int64_t sequence, int64_t count,
                          std::vector<int64_t>* slots) {
  Sequence& s = Get(sequence);
  for (int64_t t = s.length; t < s.length + count; ++t) {
    const int64_t index = t / block_size_;
    if (index == static_cast<int64_t>(s.blocks.size())) {
      s.blocks.push_back(AllocateBlock());
    } else if (t == s.length) {
      // The first write into a block this sequence already holds: copy it
      // if others use it too, and drop its registration, since its tokens
      // are about to change.
      int64_t& block = s.blocks[index];
      if (refs_[block] > 1) {
        const int64_t copy = AllocateBlock();
        const auto from = block * block_size_, to = copy * block_size_;
        for (size_t l = 0; l < keys_.size(); ++l) {
          keys_[l]
              .narrow(0, to, block_size_)
              .copy_(keys_[l].narrow(0, from, block_size_));
          values_[l]
              .narrow(0, to, block_size_)
              .copy_(values_[l].narrow(0, from, block_size_));
        }
        refs_[block] -= 1;
        block = copy;
        copied_ += 1;
      } else if (auto key = key_of_.find(block); key != key_of_.end()) {
        registry_.erase(key->second);
        key_of_.erase(key);
      }
    }
    slots->push_back(s.blocks[index] * block_size_ + t % block_size_);
  }
  s.length += count;
}

void PagedKvCache::AppendSlots(int64_t sequence, int64_t count,
                               std::vector<int64_t>* slots) const {
  const Sequence& s = Get(sequence);
  CLINRL_CHECK(count <= s.length,
               "PagedKvCache: {} slots of a {}-token "
               "sequence",
               count, s.length);
  for (int64_t t = 0; t < count; ++t) {
    slots->push_back(s.blocks[t / block_size_] * block_size_ + t % block_size_);
  }
}

void PagedKvCache::Write(int64_t layer, const at::Tensor& slots,
                         const at::Tensor& keys, const at::Tensor& values) {
  // index_copy_ takes the pool's dtype only (bf16 keys from fp32 rotary).
  const auto dtype = keys_[layer].scalar_type();
  keys_[layer].index_copy_(0, slots,
                           keys.scalar_type() == dtype ? keys : keys.to(dtype));
  values_[layer].index_copy_(
      0, slots, values.scalar_type() == dtype ? values : values.to(dtype));
}

PagedKvCacheStats PagedKvCache::stats() const {
  PagedKvCacheStats s;
  s.blocks_in_use = in_use_;
  s.peak_blocks_in_use = peak_in_use_;
  s.capacity_blocks = capacity_blocks_;
  s.copied_blocks = copied_;
  s.shared_tokens = shared_tokens_;
  return s;
}

}  // namespace clinrl::policy
