// Keys and values in fixed-size blocks from one pool, as vLLM's paged
// attention keeps them: each sequence owns a table of blocks and its own
// length, so sequences of any lengths share a decode step without padding,
// a multi-turn episode's next turn appends to its blocks without copying,
// and a finished sequence returns its blocks to the pool.
//
// Prefix sharing: a block that is full is registered under (the block
// before it, its tokens); a new sequence whose prompt starts with the same
// tokens adopts those blocks instead of computing them (a GRPO group's G
// episodes share their prompt). Blocks count their users; writing into a
// block that another sequence also uses copies it first (copy on write).
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

namespace clinrl::policy {

struct PagedKvCacheStats {
  int64_t blocks_in_use = 0;
  int64_t peak_blocks_in_use = 0;
  int64_t capacity_blocks = 0;
  int64_t copied_blocks = 0;  // copies on write
  int64_t shared_tokens = 0;  // tokens adopted from registered blocks
};

class PagedKvCache {
 public:
  // The pool starts at `initial_blocks` and doubles when a sequence needs a
  // block and none is free; block ids, and so slot ids, survive the growth.
  PagedKvCache(int64_t num_layers, int64_t num_kv_heads, int64_t head_dim,
               int64_t block_size, int64_t initial_blocks,
               at::TensorOptions options);

  int64_t block_size() const { return block_size_; }
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }

  // A new, empty sequence; returns its id.
  int64_t CreateSequence();
  // Returns the sequence's blocks to the pool (those no one else uses).
  void ReleaseSequence(int64_t sequence);
  // Tokens whose keys and values the sequence holds.
  int64_t Length(int64_t sequence) const;
  // Forgets the sequence's tokens from `length` on (a history that changed).
  void Truncate(int64_t sequence, int64_t length);

  // For an empty sequence about to hold `tokens`: adopts the registered
  // blocks that hold their leading full blocks, at most `limit` tokens'
  // worth. Returns the tokens now held.
  int64_t AdoptRegisteredPrefix(int64_t sequence,
                                const std::vector<int64_t>& tokens,
                                int64_t limit);
  // The key a sequence's next full block would be registered under once
  // its first Length() tokens are held: (the block before it, or -1, and
  // the block's tokens). Empty tokens when `tokens` does not fill it.
  std::pair<int64_t, std::vector<int64_t>> NextBlockKey(
      int64_t sequence, const std::vector<int64_t>& tokens) const;
  // Registers the sequence's full blocks (their tokens from `tokens`, the
  // sequence's history) so that later sequences can adopt them.
  void RegisterFullBlocks(int64_t sequence, const std::vector<int64_t>& tokens);

  // Makes room for `count` more tokens at the sequence's end and appends
  // their slots (block * block_size + offset) to `slots`. A shared block
  // about to be written is copied first.
  void Extend(int64_t sequence, int64_t count, std::vector<int64_t>* slots);
  // Appends the slots of the sequence's first `count` tokens.
  void AppendSlots(int64_t sequence, int64_t count,
                   std::vector<int64_t>* slots) const;

  // Writes keys and values [N, Hkv, D] of `layer` into `slots` [N].
  void Write(int64_t layer, const at::Tensor& slots, const at::Tensor& keys,
             const at::Tensor& values);
  // The layer's pool, [slots, Hkv, D].
  const at::Tensor& keys(int64_t layer) const { return keys_[layer]; }
  const at::Tensor& values(int64_t layer) const { return values_[layer]; }

  PagedKvCacheStats stats() const;

 private:
  struct Sequence {
    std::vector<int64_t> blocks;
    int64_t length = 0;
    int64_t registered_blocks = 0;  // leading blocks known to the registry
  };
  using BlockKey = std::pair<int64_t, std::vector<int64_t>>;

  int64_t AllocateBlock();
  void Unref(int64_t block);
  void Grow();
  Sequence& Get(int64_t sequence);
  const Sequence& Get(int64_t sequence) const;

  int64_t block_size_;
  std::vector<at::Tensor> keys_;    // per layer [blocks * block_size, Hkv, D]
  std::vector<at::Tensor> values_;  // same
  int64_t capacity_blocks_;
  std::vector<int64_t> free_;  // a stack; lowest id on top
  std::vector<int64_t> refs_;  // users per block
  std::map<BlockKey, int64_t> registry_;
  std::unordered_map<int64_t, BlockKey> key_of_;  // registered block -> key
  std::unordered_map<int64_t, Sequence> sequences_;
  int64_t next_sequence_ = 0;
  int64_t in_use_ = 0;
  int64_t peak_in_use_ = 0;
  int64_t copied_ = 0;
  int64_t shared_tokens_ = 0;
};

}  // namespace clinrl::policy
