#include "distributed/mpi_communicator.h"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.h"
#include "core/monotonic_clock.h"

namespace clinrl::distributed {

namespace {

// Below this many bytes, MPI_Iallreduce's latency beats the ring's 2(n-1)
// message steps.
constexpr int64_t kRingMinBytes = 64 * 1024;
// MPI counts are int: longer byte runs go out in pieces of this size.
constexpr int64_t kMaxMessageBytes = int64_t{1} << 30;

std::string MpiErrorString(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) {
    return fmt::format("MPI error {}", rc);
  }
  return std::string(text, static_cast<size_t>(length));
}

void CheckGlobal(int rc, const char* call) {
  if (rc != MPI_SUCCESS) {
    throw InternalError(
        fmt::format("MPI call {} failed: {}", call, MpiErrorString(rc)));
  }
}

void FinalizeMpiAtExit() {
  int finalized = 0;
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
}

// The MPI datatype that moves (and, except bfloat16, reduces) `dtype`.
MPI_Datatype MpiType(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kBFloat16:
      return MPI_UINT16_T;  // moved as raw bits; reduced through float32
    default:
      throw BadRequest(fmt::format("MPI communicator: dtype {} not supported",
                                   c10::toString(dtype)));
  }
}

int CountOf(int64_t n, const char* what) {
  if (n > INT_MAX) {
    throw BadRequest(fmt::format(
        "{}: a chunk of {} elements exceeds MPI's int count limit {}", what, n,
        INT_MAX));
  }
  return static_cast<int>(n);
}

void ReduceInto(torch::Tensor dst, const torch::Tensor& src, ReduceOp op) {
  if (op == ReduceOp::kMax) {
    torch::maximum_out(dst, dst, src);
  } else {
    dst.add_(src);
  }
}

int64_t Bytes(const torch::Tensor& t) { return t.numel() * t.element_size(); }

// Between polls of a pending request: spin first (a peer that is about to
// arrive costs no latency), then sleep a little longer each time, up to
// 200 us. A rank waiting for a slower one must not burn the core that rank,
// or other work on an oversubscribed node, needs; sched_yield does not give
// it up under CFS when the waiter is the only runnable task on its core.
void BackOff(int64_t spins) {
  if (spins < 2000) return;
  if (spins < 4000) {
    sched_yield();
    return;
  }
  const int64_t us = std::min<int64_t>(200, (spins - 4000) / 8 + 10);
  timespec pause{0, static_cast<long>(us * 1000)};
  nanosleep(&pause, nullptr);
}

}  // namespace

void EnsureMpiInitialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    int initialized = 0;
    CheckGlobal(MPI_Initialized(&initialized), "MPI_Initialized");
    if (initialized) return;  // the host program initialised MPI itself
    int provided = 0;
    CheckGlobal(
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided),
        "MPI_Init_thread");
    std::atexit(FinalizeMpiAtExit);
    if (provided < MPI_THREAD_SERIALIZED) {
      throw InternalError(fmt::format(
          "MPI_Init_thread: the MPI library provides thread level {}, clinrl "
          "needs at least MPI_THREAD_SERIALIZED ({})",
          provided, MPI_THREAD_SERIALIZED));
    }
  });
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, int64_t timeout_ms,
                                 std::vector<std::string> hosts)
    : comm_(comm), timeout_ms_(timeout_ms), hosts_(std::move(hosts)) {
  Check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN),
        "MPI_Comm_set_errhandler", "construct");
  Check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", "construct");
  Check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", "construct");
  if (hosts_.size() != static_cast<size_t>(size_)) hosts_.clear();
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  // After a timeout requests still point into comm_; freeing it could hang.
  if (!finalized && comm_ != MPI_COMM_NULL && broken_.empty()) {
    MPI_Comm_free(&comm_);
  }
}

void MpiCommunicator::Check(int rc, const char* call, const char* what) const {
  if (rc != MPI_SUCCESS) {
    throw InternalError(fmt::format("rank {} of {}: {} in {} failed: {}", rank_,
                                    size_, call, what, MpiErrorString(rc)));
  }
}

void MpiCommunicator::CheckUsable(const char* what) const {
  if (!broken_.empty()) {
    throw InternalError(
        fmt::format("rank {}: {} on a communicator that is unusable after: {}",
                    rank_, what, broken_));
  }
}

void MpiCommunicator::CheckRoot(int root, const char* what) const {
  if (root < 0 || root >= size_) {
    throw BadRequest(fmt::format("{}: root {} is not a rank (expected 0..{})",
                                 what, root, size_ - 1));
  }
}

std::string MpiCommunicator::DescribePeers(
    const std::vector<int>& ranks) const {
  constexpr size_t kMaxNamed = 8;  // a collective on 1000 ranks names 8
  std::string out;
  for (size_t i = 0; i < ranks.size() && i < kMaxNamed; ++i) {
    if (i > 0) out += ", ";
    out += fmt::format("rank {}", ranks[i]);
    if (!hosts_.empty()) {
      out += fmt::format(" on host {}", hosts_[static_cast<size_t>(ranks[i])]);
    }
  }
  if (ranks.size() > kMaxNamed) {
    out += fmt::format(" and {} more ranks", ranks.size() - kMaxNamed);
  }
  return out;
}

void MpiCommunicator::WaitAll(std::vector<MPI_Request>& requests,
                              const char* what, int64_t bytes, double start,
                              const std::vector<int>& peers) {
  const double deadline =
      timeout_ms_ > 0 ? start + static_cast<double>(timeout_ms_) / 1000.0 : 0;
  int64_t spins = 0;
  for (;;) {
    int done = 0;
    Check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done,
                      MPI_STATUSES_IGNORE),
          "MPI_Testall", what);
    if (done) return;
    if (deadline > 0 && MonotonicSeconds() > deadline) {
      // The peers of the requests still pending (a point-to-point step), or
      // every other rank (a collective waits on all of them).
      std::vector<int> waited;
      for (size_t i = 0; i < peers.size() && i < requests.size(); ++i) {
        int complete = 0;
        if (MPI_Request_get_status(requests[i], &complete, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS) {
          complete = 0;  // for the message only: count it as pending
        }
        if (!complete &&
            std::find(waited.begin(), waited.end(), peers[i]) == waited.end()) {
          waited.push_back(peers[i]);
        }
      }
      if (waited.empty()) {
        for (int r = 0; r < size_; ++r) {
          if (r != rank_) waited.push_back(r);
        }
      }
      broken_ = fmt::format(
          "rank {} of {}: {} of {} bytes timed out after {} ms (a peer rank "
          "crashed, hangs, or skipped the call); waiting on {}",
          rank_, size_, what, bytes, timeout_ms_, DescribePeers(waited));
      throw Timeout(broken_);
    }
    BackOff(++spins);
  }
}

void MpiCommunicator::RingReduceScatter(torch::Tensor& flat,
                                        const Bounds& bounds, ReduceOp op,
                                        const char* what, double start) {
  const int n = size_;
  const int right = (rank_ + 1) % n, left = (rank_ + n - 1) % n;
  int64_t longest = 0;
  for (int i = 0; i < n; ++i)
    longest = std::max(longest, bounds[i + 1] - bounds[i]);
  torch::Tensor incoming = torch::empty({longest}, flat.options());
  const MPI_Datatype type = MpiType(flat.scalar_type());
  const int64_t bytes = Bytes(flat);
  auto chunk = [&](int i) {
    return flat.narrow(0, bounds[i], bounds[i + 1] - bounds[i]);
  };
  // Step s sends the chunk finished in step s-1 to the right and folds the
  // left neighbour's partial sum into the next one; after n-1 steps chunk
  // `rank_` holds the reduction over all ranks.
  for (int s = 0; s < n - 1; ++s) {
    const int send = (rank_ - s - 1 + 2 * n) % n;
    const int recv = (rank_ - s - 2 + 2 * n) % n;
    torch::Tensor out = chunk(send), in = chunk(recv);
    std::vector<MPI_Request> req(2, MPI_REQUEST_NULL);
    Check(MPI_Irecv(incoming.data_ptr(), CountOf(in.numel(), what), type, left,
                    s, comm_, &req[0]),
          "MPI_Irecv", what);
    Check(MPI_Isend(out.data_ptr(), CountOf(out.numel(), what), type, right, s,
                    comm_, &req[1]),
          "MPI_Isend", what);
    try {
      WaitAll(req, what, bytes, start, {left, right});
    } catch (const Timeout&) {
      abandoned_.push_back(incoming);
      abandoned_.push_back(flat);
      throw;
    }
    ReduceInto(in, incoming.narrow(0, 0, in.numel()), op);
  }
}

void MpiCommunicator::RingAllGather(torch::Tensor& flat, const Bounds& bounds,
                                    const char* what, double start) {
  const int n = size_;
  const int right = (rank_ + 1) % n, left = (rank_ + n - 1) % n;
  const MPI_Datatype type = MpiType(flat.scalar_type());
  const int64_t bytes = Bytes(flat);
  auto chunk = [&](int i) {
    return flat.narrow(0, bounds[i], bounds[i + 1] - bounds[i]);
  };
  // Step s forwards the chunk received in step s-1 (own chunk first).
  for (int s = 0; s < n - 1; ++s) {
    const int send = (rank_ - s + n) % n;
    const int recv = (rank_ - s - 1 + n) % n;
    torch::Tensor out = chunk(send), in = chunk(recv);
    std::vector<MPI_Request> req(2, MPI_REQUEST_NULL);
    Check(MPI_Irecv(in.data_ptr(), CountOf(in.numel(), what), type, left, n + s,
                    comm_, &req[0]),
          "MPI_Irecv", what);
    Check(MPI_Isend(out.data_ptr(), CountOf(out.numel(), what), type, right,
                    n + s, comm_, &req[1]),
          "MPI_Isend", what);
    try {
      WaitAll(req, what, bytes, start, {left, right});
    } catch (const Timeout&) {
      abandoned_.push_back(flat);
      throw;
    }
  }
}

void MpiCommunicator::AllReduce(torch::Tensor& t, ReduceOp op) {
  const char* what = "AllReduce";
  CheckUsable(what);
  CheckCollectiveTensor(t, what, "tensor");
  if (t.device().type() != torch::kCPU) {
    throw BadRequest("AllReduce: the MPI backend takes CPU tensors");
  }
  if (op == ReduceOp::kAvg && t.scalar_type() == torch::kInt64) {
    throw BadRequest("AllReduce: avg of an int64 tensor (use sum)");
  }
  const double start = MonotonicSeconds();
  torch::NoGradGuard no_grad;
  if (size_ == 1 || t.numel() == 0) return;
  // bfloat16 is summed in float32 and rounded once at the end: MPI has no
  // bfloat16 type, and rounding after every ring step would lose more.
  const bool via_float = t.scalar_type() == torch::kBFloat16;
  torch::Tensor flat =
      via_float ? t.reshape(-1).to(torch::kFloat32) : t.view(-1);
  if (Bytes(flat) < kRingMinBytes || flat.numel() < size_) {
    std::vector<MPI_Request> req(1, MPI_REQUEST_NULL);
    Check(MPI_Iallreduce(
              MPI_IN_PLACE, flat.data_ptr(), CountOf(flat.numel(), what),
              MpiType(flat.scalar_type()),
              op == ReduceOp::kMax ? MPI_MAX : MPI_SUM, comm_, &req[0]),
          "MPI_Iallreduce", what);
    try {
      WaitAll(req, what, Bytes(flat), start);
    } catch (const Timeout&) {
      abandoned_.push_back(flat);
      throw;
    }
    if (op == ReduceOp::kAvg) flat.div_(size_);
  } else {
    Bounds bounds(static_cast<size_t>(size_) + 1);
    for (int i = 0; i <= size_; ++i) bounds[i] = flat.numel() * i / size_;
    RingReduceScatter(flat, bounds, op, what, start);
    if (op == ReduceOp::kAvg) {
      flat.narrow(0, bounds[rank_], bounds[rank_ + 1] - bounds[rank_])
          .div_(size_);
    }
    RingAllGather(flat, bounds, what, start);
  }
  if (via_float) t.view(-1).copy_(flat);
}

void MpiCommunicator::ReduceScatter(const torch::Tensor& input,
                                    torch::Tensor& output, ReduceOp op) {
  const char* what = "ReduceScatter";
  CheckUsable(what);
  CheckCollectiveTensor(input, what, "input");
  CheckCollectiveTensor(output, what, "output");
  if (input.numel() != output.numel() * size_ ||
      input.scalar_type() != output.scalar_type()) {
    throw BadRequest(fmt::format(
        "ReduceScatter: input has {} elements of {}, output {} of {}; "
        "expected input = {} ranks x output elements, same dtype",
        input.numel(), c10::toString(input.scalar_type()), output.numel(),
        c10::toString(output.scalar_type()), size_));
  }
  if (op == ReduceOp::kAvg && input.scalar_type() == torch::kInt64) {
    throw BadRequest("ReduceScatter: avg of an int64 tensor (use sum)");
  }
  const double start = MonotonicSeconds();
  torch::NoGradGuard no_grad;
  // The ring works in place, so it runs on a copy of the input.
  torch::Tensor flat = input.reshape(-1).to(
      input.scalar_type() == torch::kBFloat16 ? torch::kFloat32
                                              : input.scalar_type(),
      /*non_blocking=*/false, /*copy=*/true);
  Bounds bounds(static_cast<size_t>(size_) + 1);
  for (int i = 0; i <= size_; ++i) bounds[i] = output.numel() * i;
  if (size_ > 1) RingReduceScatter(flat, bounds, op, what, start);
  torch::Tensor mine = flat.narrow(0, bounds[rank_], output.numel());
  if (op == ReduceOp::kAvg) mine.div_(size_);
  output.view(-1).copy_(mine);
}

void MpiCommunicator::AllGather(const torch::Tensor& input,
                                torch::Tensor& output) {
  const char* what = "AllGather";
  CheckUsable(what);
  CheckCollectiveTensor(input, what, "input");
  CheckCollectiveTensor(output, what, "output");
  if (output.numel() != input.numel() * size_ ||
      input.scalar_type() != output.scalar_type()) {
    throw BadRequest(fmt::format(
        "AllGather: input has {} elements of {}, output {} of {}; expected "
        "output = {} ranks x input elements, same dtype",
        input.numel(), c10::toString(input.scalar_type()), output.numel(),
        c10::toString(output.scalar_type()), size_));
  }
  const double start = MonotonicSeconds();
  torch::NoGradGuard no_grad;
  torch::Tensor flat = output.view(-1);
  flat.narrow(0, input.numel() * rank_, input.numel()).copy_(input.reshape(-1));
  Bounds bounds(static_cast<size_t>(size_) + 1);
  for (int i = 0; i <= size_; ++i) bounds[i] = input.numel() * i;
  if (size_ > 1) RingAllGather(flat, bounds, what, start);
}

void MpiCommunicator::Broadcast(torch::Tensor& t, int root) {
  const char* what = "Broadcast";
  CheckUsable(what);
  CheckCollectiveTensor(t, what, "tensor");
  CheckRoot(root, what);
  const double start = MonotonicSeconds();
  auto* base = static_cast<char*>(t.data_ptr());
  const int64_t bytes = Bytes(t);
  std::vector<MPI_Request> req;
  for (int64_t off = 0; off < bytes; off += kMaxMessageBytes) {
    req.push_back(MPI_REQUEST_NULL);
    Check(MPI_Ibcast(base + off,
                     static_cast<int>(std::min(kMaxMessageBytes, bytes - off)),
                     MPI_BYTE, root, comm_, &req.back()),
          "MPI_Ibcast", what);
  }
  try {
    WaitAll(req, what, bytes, start);
  } catch (const Timeout&) {
    abandoned_.push_back(t);
    throw;
  }
}

void MpiCommunicator::BroadcastBytes(std::string& bytes, int root) {
  const char* what = "BroadcastBytes";
  CheckUsable(what);
  CheckRoot(root, what);
  torch::Tensor length =
      torch::full({1}, static_cast<int64_t>(bytes.size()), torch::kInt64);
  Broadcast(length, root);
  torch::Tensor payload = torch::empty({length.item<int64_t>()}, torch::kUInt8);
  if (rank_ == root && !bytes.empty()) {
    std::memcpy(payload.data_ptr(), bytes.data(), bytes.size());
  }
  const double start = MonotonicSeconds();
  std::vector<MPI_Request> req;
  auto* base = static_cast<char*>(payload.data_ptr());
  const int64_t total = payload.numel();
  for (int64_t off = 0; off < total; off += kMaxMessageBytes) {
    req.push_back(MPI_REQUEST_NULL);
    Check(MPI_Ibcast(base + off,
                     static_cast<int>(std::min(kMaxMessageBytes, total - off)),
                     MPI_BYTE, root, comm_, &req.back()),
          "MPI_Ibcast", what);
  }
  try {
    WaitAll(req, what, total, start);
  } catch (const Timeout&) {
    abandoned_.push_back(payload);
    throw;
  }
  if (rank_ != root) bytes.assign(base, static_cast<size_t>(total));
}

void MpiCommunicator::Barrier() {
  const char* what = "Barrier";
  CheckUsable(what);
  const double start = MonotonicSeconds();
  std::vector<MPI_Request> req(1, MPI_REQUEST_NULL);
  Check(MPI_Ibarrier(comm_, &req[0]), "MPI_Ibarrier", what);
  WaitAll(req, what, 0, start);
}

std::unique_ptr<Communicator> MpiCommunicator::Split(int color, int key) {
  const char* what = "Split";
  CheckUsable(what);
  // MPI_Comm_split blocks with no way out; gathering (color, key) first
  // under the deadline proves every rank has arrived, so the split cannot
  // hang on a missing one.
  torch::Tensor mine = torch::tensor({int64_t{color}, int64_t{key}});
  torch::Tensor all = torch::empty({2 * size_}, torch::kInt64);
  AllGather(mine, all);
  MPI_Comm sub = MPI_COMM_NULL;
  Check(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &sub),
        "MPI_Comm_split", what);
  if (sub == MPI_COMM_NULL) return nullptr;
  // The new ranks are the ranks of this color ordered by (key, old rank),
  // MPI_Comm_split's rule: their hosts follow from the gathered pairs.
  std::vector<std::string> sub_hosts;
  if (!hosts_.empty()) {
    const auto pairs = all.accessor<int64_t, 1>();
    std::vector<int> members;
    for (int r = 0; r < size_; ++r) {
      if (pairs[2 * r] == color) members.push_back(r);
    }
    std::stable_sort(members.begin(), members.end(), [&](int a, int b) {
      return pairs[2 * a + 1] < pairs[2 * b + 1];
    });
    for (int r : members) sub_hosts.push_back(hosts_[static_cast<size_t>(r)]);
  }
  return std::make_unique<MpiCommunicator>(sub, timeout_ms_,
                                           std::move(sub_hosts));
}

namespace {

// Every rank's MPI_Get_processor_name (the node's hostname), by rank, for
// the timeout messages; bounded by the deadline like the communicator's
// creation. On a timeout the buffer is left to the pending request.
std::vector<std::string> GatherHosts(MPI_Comm comm, int64_t timeout_ms) {
  int rank = 0, size = 1;
  CheckGlobal(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  CheckGlobal(MPI_Comm_size(comm, &size), "MPI_Comm_size");
  constexpr int kName = MPI_MAX_PROCESSOR_NAME;
  // Received names, then this rank's: both stay allocated (released, so
  // leaked) when the request is abandoned on a timeout, as MPI may still
  // use them.
  auto names = std::make_unique<std::vector<char>>(
      static_cast<size_t>(size + 1) * kName, 0);
  char* mine = names->data() + static_cast<size_t>(size) * kName;
  int length = 0;
  CheckGlobal(MPI_Get_processor_name(mine, &length), "MPI_Get_processor_name");
  MPI_Request req = MPI_REQUEST_NULL;
  CheckGlobal(MPI_Iallgather(mine, kName, MPI_CHAR, names->data(), kName,
                             MPI_CHAR, comm, &req),
              "MPI_Iallgather(processor names)");
  const double deadline =
      MonotonicSeconds() + static_cast<double>(timeout_ms) / 1000.0;
  for (int64_t spins = 0;; ++spins) {
    int done = 0;
    CheckGlobal(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) break;
    if (timeout_ms > 0 && MonotonicSeconds() > deadline) {
      static_cast<void>(names.release());  // left to the pending request
      throw Timeout(fmt::format(
          "rank {}: gathering the ranks' hostnames (MPI_Iallgather) timed "
          "out after {} ms: not every rank of the job reached it",
          rank, timeout_ms));
    }
    BackOff(spins);
  }
  std::vector<std::string> hosts;
  for (int r = 0; r < size; ++r) {
    const char* name = names->data() + static_cast<size_t>(r) * kName;
    hosts.emplace_back(name, strnlen(name, kName));
  }
  return hosts;
}

}  // namespace

std::unique_ptr<Communicator> MakeMpiCommunicator(int64_t timeout_ms) {
  EnsureMpiInitialized();
  CheckGlobal(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN),
              "MPI_Comm_set_errhandler(MPI_COMM_WORLD)");
  // A private duplicate: clinrl's messages never match the host program's.
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Request req = MPI_REQUEST_NULL;
  CheckGlobal(MPI_Comm_idup(MPI_COMM_WORLD, &dup, &req), "MPI_Comm_idup");
  const double deadline =
      MonotonicSeconds() + static_cast<double>(timeout_ms) / 1000.0;
  for (int64_t spins = 0;; ++spins) {
    int done = 0;
    CheckGlobal(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) break;
    if (timeout_ms > 0 && MonotonicSeconds() > deadline) {
      int rank = -1;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      throw Timeout(fmt::format(
          "rank {}: creating the MPI communicator (MPI_Comm_idup) timed out "
          "after {} ms: not every rank of the job reached it",
          rank, timeout_ms));
    }
    BackOff(spins);
  }
  return std::make_unique<MpiCommunicator>(dup, timeout_ms,
                                           GatherHosts(dup, timeout_ms));
}

}  // namespace clinrl::distributed
