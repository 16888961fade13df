// The paged cache's bookkeeping: blocks from the pool and back, slots that
// survive the pool's growth, registered blocks adopted by a sequence with
// the same leading tokens, and copy on write.
#include "policy/paged_kv_cache.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace clinrl::policy {
namespace {

PagedKvCache SmallCache() {
  // 1 layer, 1 KV head of width 2, blocks of 4 tokens, a pool of 2 blocks.
  return PagedKvCache(1, 1, 2, 4, 2, torch::dtype(torch::kFloat));
}

// Writes value `base + t` at each of the sequence's new slots.
std::vector<int64_t> Fill(PagedKvCache& cache, int64_t seq, int64_t count,
                          float base) {
  std::vector<int64_t> slots;
  const int64_t first = cache.Length(seq);
  cache.Extend(seq, count, &slots);
  const auto values =
      (torch::arange(first, first + count, torch::kFloat) + base)
          .view({count, 1, 1})
          .expand({count, 1, 2})
          .contiguous();
  cache.Write(0, torch::tensor(slots), values, values);
  return slots;
}

std::vector<float> Held(const PagedKvCache& cache, int64_t seq) {
  std::vector<int64_t> slots;
  cache.AppendSlots(seq, cache.Length(seq), &slots);
  const auto keys = cache.keys(0).index_select(0, torch::tensor(slots));
  std::vector<float> out;
  for (int64_t i = 0; i < keys.size(0); ++i) {
    out.push_back(keys[i][0][0].item<float>());
  }
  return out;
}

TEST(PagedKvCacheTest, BlocksComeFromThePoolAndGoBackAndSurviveGrowth) {
  PagedKvCache cache = SmallCache();
  const int64_t a = cache.CreateSequence();
  Fill(cache, a, 6, 0);  // 2 blocks: the whole pool
  const int64_t b = cache.CreateSequence();
  Fill(cache, b, 9, 100);  // 3 more: the pool grows twice
  EXPECT_EQ(cache.stats().blocks_in_use, 5);
  EXPECT_GE(cache.stats().capacity_blocks, 5);
  EXPECT_EQ(Held(cache, a), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(Held(cache, b)[8], 108);
  cache.Truncate(b, 4);
  EXPECT_EQ(cache.stats().blocks_in_use, 3);
  cache.ReleaseSequence(a);
  cache.ReleaseSequence(b);
  EXPECT_EQ(cache.stats().blocks_in_use, 0);
  EXPECT_EQ(cache.stats().peak_blocks_in_use, 5);
}

TEST(PagedKvCacheTest, RegisteredBlocksAreAdoptedAndCopiedBeforeAWrite) {
  PagedKvCache cache = SmallCache();
  const std::vector<int64_t> tokens = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  const int64_t a = cache.CreateSequence();
  Fill(cache, a, 10, 0);
  cache.RegisterFullBlocks(a, tokens);
  // Same first 8 tokens: two blocks adopted, none computed.
  const int64_t b = cache.CreateSequence();
  std::vector<int64_t> other = tokens;
  other[9] = 99;
  EXPECT_EQ(cache.AdoptRegisteredPrefix(b, other, 10), 8);
  EXPECT_EQ(cache.stats().blocks_in_use, 3);
  EXPECT_EQ(cache.stats().shared_tokens, 8);
  // A different first token adopts nothing.
  const int64_t c = cache.CreateSequence();
  EXPECT_EQ(cache.AdoptRegisteredPrefix(c, {1, 6, 7, 8, 9}, 5), 0);
  // b rewinds into its second (shared) block and writes there: the block is
  // copied, a's keys stay as they were.
  cache.Truncate(b, 6);
  Fill(cache, b, 2, 50);
  EXPECT_EQ(cache.stats().copied_blocks, 1);
  EXPECT_EQ(Held(cache, a), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(Held(cache, b), (std::vector<float>{0, 1, 2, 3, 4, 5, 56, 57}));
  // Once a is gone, its registered blocks are forgotten with it.
  cache.ReleaseSequence(a);
  cache.ReleaseSequence(b);
  const int64_t d = cache.CreateSequence();
  EXPECT_EQ(cache.AdoptRegisteredPrefix(d, tokens, 10), 0);
}

}  // namespace
}  // namespace clinrl::policy
