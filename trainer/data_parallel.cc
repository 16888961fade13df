#include "trainer/data_parallel.h"

#include <cmath>

#include "core/error.h"

namespace clinrl::trainer {

std::pair<size_t, size_t> BatchShare(size_t count, int rank, int ranks) {
  CLINRL_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "rank {} of {} ranks",
               rank, ranks);
  const size_t r = static_cast<size_t>(rank), n = static_cast<size_t>(ranks);
  return {count * r / n, count * (r + 1) / n};
}

void ReduceScatterFlat(const torch::Tensor& flat, torch::Tensor& shard,
                       distributed::Communicator& comm, int64_t bucket_bytes) {
  const int n = comm.size();
  const int64_t size = shard.numel();
  CLINRL_CHECK(flat.numel() == size * n,
               "reduce-scatter of {} elements into shards of {} over {} ranks",
               flat.numel(), size, n);
  if (n == 1) {
    shard.copy_(flat);
    return;
  }
  // Bucket b holds the same column range [c, c + w) of every rank's shard,
  // laid out rank by rank, which is the reduce-scatter input shape.
  const int64_t element = flat.element_size();
  const int64_t width = std::max<int64_t>(
      1, std::min(size, bucket_bytes / std::max<int64_t>(1, element * n)));
  const torch::Tensor rows = flat.view({n, size});
  for (int64_t c = 0; c < size; c += width) {
    const int64_t w = std::min(width, size - c);
    const torch::Tensor bucket = rows.narrow(1, c, w).contiguous().view(-1);
    torch::Tensor mine = shard.narrow(0, c, w);
    comm.ReduceScatter(bucket, mine, distributed::ReduceOp::kSum);
  }
}

ReducedGradients ReduceScatterGradients(const FlatParameterLayout& layout,
                                        distributed::Communicator& comm,
                                        int64_t bucket_bytes,
                                        bool local_loss_finite,
                                        torch::ScalarType reduce_dtype) {
  CLINRL_CHECK(comm.size() == layout.ranks,
               "layout for {} ranks used on a communicator of {}", layout.ranks,
               comm.size());
  torch::NoGradGuard no_grad;
  const size_t count = layout.params.size();
  const auto dtype =
      count == 0 ? torch::kFloat32 : layout.params[0].scalar_type();
  const int64_t shard = layout.shard_size;

  const torch::Device device =
      count == 0 ? torch::Device(torch::kCPU) : layout.params[0].device();
  const auto wire = torch::TensorOptions().dtype(reduce_dtype).device(device);
  torch::Tensor flat = torch::zeros({layout.padded()}, wire);
  std::vector<double> flags(count, 0.0);
  for (size_t i = 0; i < count; ++i) {
    const torch::Tensor& g = layout.params[i].grad();
    if (!g.defined()) continue;
    flags[i] = 1.0;
    flat.narrow(0, layout.offsets[i], layout.params[i].numel())
        .copy_(g.reshape(-1));
  }

  ReducedGradients out;
  torch::Tensor reduced = torch::empty({shard}, wire);
  ReduceScatterFlat(flat, reduced, comm, bucket_bytes);
  out.shard = reduced.scalar_type() == dtype ? reduced : reduced.to(dtype);

  // [sum of squares of this shard, ranks with a non-finite loss, gradient
  // flags...], summed over ranks: one collective for all three.
  torch::Tensor control =
      torch::zeros({static_cast<int64_t>(count) + 2}, torch::kFloat64);
  control[0] = out.shard.to(torch::kFloat64).pow(2).sum().item<double>();
  control[1] = local_loss_finite ? 0.0 : 1.0;
  for (size_t i = 0; i < count; ++i) {
    control[static_cast<int64_t>(i) + 2] = flags[i];
  }
  comm.AllReduce(control, distributed::ReduceOp::kSum);
  auto acc = control.accessor<double, 1>();
  out.norm = std::sqrt(acc[0]);
  out.loss_finite = acc[1] == 0.0;
  out.has_grad.resize(count);
  for (size_t i = 0; i < count; ++i) {
    out.has_grad[i] = acc[static_cast<int64_t>(i) + 2] > 0;
  }
  return out;
}

}  // namespace clinrl::trainer
