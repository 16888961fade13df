// Attention over the paged pool against the library's attention: the CPU
// loop that reads every query's keys straight from the pool, and the
// gathered, grouped calls, on rows of ragged lengths with grouped-query
// heads and prefill rows among them, for head sizes the CPU loop runs in
// 16-lane vectors (16, 64) and one it runs in scalars (24); both against
// torch's own softmax attention of each row on its own.
#include "policy/paged_attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace clinrl::policy {
namespace {

TEST(PagedAttentionTest, PoolReadsAndGroupedCallsEqualEachRowAlone) {
  for (const int64_t D : {16, 24, 64}) {
    SCOPED_TRACE("head dim " + std::to_string(D));
    auto gen = at::detail::createCPUGenerator(3);
    const int64_t H = 4, Hkv = 2;
    const auto keys = torch::randn({80, Hkv, D}, gen);
    const auto values = torch::randn({80, Hkv, D}, gen);
    // Four decoding rows (contexts 5, 9, 1 and 37, over two vectors of
    // scores and a part) and two prefill rows, 3 queries over 7 keys and 20
    // over 37, slots scattered over the pool.
    std::vector<int64_t> long_row(37);
    for (int64_t j = 0; j < 37; ++j) long_row[j] = 79 - 2 * j;
    std::vector<PagedRow> rows = {{1, {3, 7, 8, 20, 21}},
                                  {1, {0, 1, 2, 30, 31, 32, 33, 34, 35}},
                                  {3, {10, 11, 12, 13, 14, 15, 16}},
                                  {1, {39}},
                                  {1, long_row},
                                  {20, long_row}};
    const auto q = torch::randn({27, H, D}, gen);
    PagedAttention pooled, grouped;
    pooled.Plan(rows, torch::kCPU, torch::kFloat);
    // Planned for another pool dtype, every row goes through the grouped
    // library calls (run here in float32 all the same).
    grouped.Plan(rows, torch::kCPU, torch::kBFloat16);
    const auto a = pooled.Attend(q, keys, values);
    const auto b = grouped.Attend(q, keys, values);
    int64_t start = 0;
    for (const PagedRow& row : rows) {
      const auto slots = torch::tensor(row.slots);
      const int64_t L = slots.size(0), n = row.query_count;
      const auto k = keys.index_select(0, slots).transpose(0, 1).unsqueeze(0);
      const auto v = values.index_select(0, slots).transpose(0, 1).unsqueeze(0);
      const auto qr = q.narrow(0, start, n).transpose(0, 1).unsqueeze(0);
      // Causal with the row's earlier keys all visible.
      const auto mask = torch::arange(L).view({1, L}).le(
          torch::arange(n).view({n, 1}) + (L - n));
      const auto want =
          at::scaled_dot_product_attention(qr, k, v, mask, 0.0, false,
                                           std::nullopt, /*enable_gqa=*/true)[0]
              .transpose(0, 1);
      EXPECT_TRUE(torch::allclose(a.narrow(0, start, n), want, 1e-5, 1e-5))
          << "pooled, row at " << start;
      EXPECT_TRUE(torch::allclose(b.narrow(0, start, n), want, 1e-5, 1e-5))
          << "grouped, row at " << start;
      start += n;
    }
  }
}

}  // namespace
}  // namespace clinrl::policy
