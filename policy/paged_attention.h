// Attention over a paged KV cache for one engine step: the step's tokens are
// packed in one row (each decoding sequence's one token, each prefilling
// sequence's new tokens), and every sequence attends to its own keys only,
// wherever its blocks lie in the pool. The plan is built once per step and
// used by every layer. Rows are batched into a few groups of similar query
// counts and contexts (every decoding row in one); a group's keys and values
// are gathered into buffers reused from layer to layer and step to step,
// padded to the group's longest row and masked, and one fused attention
// call covers the group. Padding costs at most 2x a group's useful work.
// On the CPU in float32 every row skips the gather: a fused loop reads each
// query's keys and values straight from the pool (no copy, no padding, no
// mask; a prefill row's query t attends to the row's first past + t + 1
// keys), which at one query a row costs a fraction of the library call's
// fixed overhead, and for the ragged prefill of multi-turn rollouts saves
// the padding of grouped calls.
#pragma once

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <vector>

namespace clinrl::policy {

struct PagedRow {
  int64_t query_count = 1;  // new tokens this step (1 when decoding)
  // Slots of every key the row attends to, oldest first, its new tokens
  // last: context = slots.size() >= query_count.
  std::vector<int64_t> slots;
};

class PagedAttention {
 public:
  PagedAttention() = default;
  // `rows` in packed order: row r's queries follow row r - 1's. `dtype` is
  // the pool's.
  void Plan(const std::vector<PagedRow>& rows, const c10::Device& device,
            c10::ScalarType dtype);

  // q [N, H, D] (the packed queries); pool_keys/pool_values [slots, Hkv, D]
  // of one layer. Returns [N, H, D].
  at::Tensor Attend(const at::Tensor& q, const at::Tensor& pool_keys,
                    const at::Tensor& pool_values);

  int64_t attended_keys() const { return attended_keys_; }

 private:
  struct Group {
    int64_t rows = 0, queries = 0, context = 0;  // padded sizes
    at::Tensor query_index;  // [rows * queries] packed query of each slot
    at::Tensor key_slots;    // [rows * context]
    at::Tensor mask;         // [rows, 1, queries, context]; undefined: none
    // The padded outputs that are real queries, and where they go.
    at::Tensor take, dest;  // undefined when every output is real, in order
  };
  // Queries read from the pool by the CPU loop: query i is packed query
  // query[i], attending to the keys at slots[offsets[i]] onwards, lengths[i]
  // of them (a row's slots are stored once, shared by its queries).
  struct PooledRows {
    std::vector<int64_t> query, offsets, lengths, slots;
  };
  std::vector<Group> groups_;
  PooledRows pooled_;
  int64_t total_queries_ = 0;
  int64_t attended_keys_ = 0;
  at::Tensor key_buffer_, value_buffer_;  // reused gathers
};

}  // namespace clinrl::policy
