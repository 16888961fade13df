// Built only with CLINRL_WITH_NCCL (see distributed/CMakeLists.txt).
#include "distributed/nccl_communicator.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <sched.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/local_rank.h"
#include "core/monotonic_clock.h"

namespace clinrl::distributed {

namespace {

ncclDataType_t NcclType(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return ncclFloat32;
    case torch::kFloat64:
      return ncclFloat64;
    case torch::kInt64:
      return ncclInt64;
    case torch::kBFloat16:
      return ncclBfloat16;
    default:
      throw BadRequest(fmt::format("NCCL communicator: dtype {} not supported",
                                   c10::toString(dtype)));
  }
}

ncclRedOp_t NcclOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
  }
  return ncclSum;
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(std::unique_ptr<Communicator> bootstrap, int64_t timeout_ms)
      : bootstrap_(std::move(bootstrap)), timeout_ms_(timeout_ms) {
    rank_ = bootstrap_->rank();
    size_ = bootstrap_->size();
    int devices = 0;
    CheckCuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount", "construct");
    if (devices < 1) {
      throw InternalError(fmt::format(
          "rank {}: the NCCL backend needs a CUDA device, none is visible",
          rank_));
    }
    device_ = NodeLocalRank() % devices;
    CheckCuda(cudaSetDevice(device_), "cudaSetDevice", "construct");
    ncclUniqueId id;
    std::string bytes;
    if (rank_ == 0) {
      CheckNccl(ncclGetUniqueId(&id), "ncclGetUniqueId", "construct");
      bytes.assign(id.internal, NCCL_UNIQUE_ID_BYTES);
    }
    bootstrap_->BroadcastBytes(bytes, 0);
    CLINRL_CHECK(bytes.size() == NCCL_UNIQUE_ID_BYTES,
                 "ncclUniqueId of {} bytes, expected {}", bytes.size(),
                 NCCL_UNIQUE_ID_BYTES);
    std::memcpy(id.internal, bytes.data(), NCCL_UNIQUE_ID_BYTES);
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
    // Non-blocking init, so a rank that never joins is a Timeout, not a hang.
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    const double start = MonotonicSeconds();
    ncclResult_t rc = ncclCommInitRankConfig(&comm_, size_, id, rank_, &config);
    if (rc != ncclInProgress)
      CheckNccl(rc, "ncclCommInitRankConfig", "construct");
    WaitInit(start);
#else
    CheckNccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank",
              "construct");
#endif
    CheckCuda(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming),
              "cudaEventCreate", "construct");
  }

  ~NcclCommunicator() override {
    if (done_) cudaEventDestroy(done_);
    if (comm_) {
      if (broken_.empty()) {
        ncclCommDestroy(comm_);
      } else {
        ncclCommAbort(comm_);
      }
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  // Host tensors (the learner's small control values: token counts, norms,
  // flags) take the MPI bootstrap, so callers need not stage them on the GPU;
  // device tensors take NCCL.
  void AllReduce(torch::Tensor& t, ReduceOp op) override {
    if (OnHost(t)) return bootstrap_->AllReduce(t, op);
    const char* what = "AllReduce";
    CheckTensor(t, what, "tensor");
    const double start = MonotonicSeconds();
    CheckNccl(ncclAllReduce(
                  t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()),
                  NcclType(t.scalar_type()), NcclOp(op), comm_, Stream()),
              "ncclAllReduce", what);
    Wait(what, t.numel() * t.element_size(), start);
  }

  void ReduceScatter(const torch::Tensor& input, torch::Tensor& output,
                     ReduceOp op) override {
    if (OnHost(input) && OnHost(output)) {
      return bootstrap_->ReduceScatter(input, output, op);
    }
    const char* what = "ReduceScatter";
    CheckTensor(input, what, "input");
    CheckTensor(output, what, "output");
    if (input.numel() != output.numel() * size_ ||
        input.scalar_type() != output.scalar_type()) {
      throw BadRequest(fmt::format(
          "ReduceScatter: input has {} elements, output {}; expected input = "
          "{} ranks x output elements, same dtype",
          input.numel(), output.numel(), size_));
    }
    const double start = MonotonicSeconds();
    CheckNccl(ncclReduceScatter(input.data_ptr(), output.data_ptr(),
                                static_cast<size_t>(output.numel()),
                                NcclType(input.scalar_type()), NcclOp(op),
                                comm_, Stream()),
              "ncclReduceScatter", what);
    Wait(what, input.numel() * input.element_size(), start);
  }

  void AllGather(const torch::Tensor& input, torch::Tensor& output) override {
    if (OnHost(input) && OnHost(output)) {
      return bootstrap_->AllGather(input, output);
    }
    const char* what = "AllGather";
    CheckTensor(input, what, "input");
    CheckTensor(output, what, "output");
    if (output.numel() != input.numel() * size_ ||
        input.scalar_type() != output.scalar_type()) {
      throw BadRequest(fmt::format(
          "AllGather: input has {} elements, output {}; expected output = {} "
          "ranks x input elements, same dtype",
          input.numel(), output.numel(), size_));
    }
    const double start = MonotonicSeconds();
    CheckNccl(ncclAllGather(input.data_ptr(), output.data_ptr(),
                            static_cast<size_t>(input.numel()),
                            NcclType(input.scalar_type()), comm_, Stream()),
              "ncclAllGather", what);
    Wait(what, output.numel() * output.element_size(), start);
  }

  void Broadcast(torch::Tensor& t, int root) override {
    if (OnHost(t)) return bootstrap_->Broadcast(t, root);
    const char* what = "Broadcast";
    CheckTensor(t, what, "tensor");
    if (root < 0 || root >= size_) {
      throw BadRequest(fmt::format("Broadcast: root {} is not a rank (0..{})",
                                   root, size_ - 1));
    }
    const double start = MonotonicSeconds();
    const size_t bytes = static_cast<size_t>(t.numel() * t.element_size());
    CheckNccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), bytes, ncclUint8, root,
                            comm_, Stream()),
              "ncclBroadcast", what);
    Wait(what, static_cast<int64_t>(bytes), start);
  }

  void BroadcastBytes(std::string& bytes, int root) override {
    bootstrap_->BroadcastBytes(bytes, root);
  }

  void Barrier() override {
    // A one-element all-reduce on the stream orders the barrier after the
    // work already queued on it, which an MPI barrier would not.
    torch::Tensor token = torch::zeros({1}, torch::TensorOptions()
                                                .dtype(torch::kFloat32)
                                                .device(torch::kCUDA, device_));
    AllReduce(token, ReduceOp::kSum);
  }

  std::unique_ptr<Communicator> Split(int color, int key) override {
    std::unique_ptr<Communicator> sub = bootstrap_->Split(color, key);
    if (!sub) return nullptr;
    return MakeNcclCommunicator(std::move(sub), timeout_ms_);
  }

 private:
  static bool OnHost(const torch::Tensor& t) {
    return t.defined() && t.device().is_cpu();
  }

  cudaStream_t Stream() const {
    return c10::cuda::getCurrentCUDAStream(device_).stream();
  }

  void CheckTensor(const torch::Tensor& t, const char* what,
                   const char* arg) const {
    if (!broken_.empty()) {
      throw InternalError(fmt::format(
          "rank {}: {} on a communicator that is unusable after: {}", rank_,
          what, broken_));
    }
    CheckCollectiveTensor(t, what, arg);
    if (!t.is_cuda() || t.get_device() != device_) {
      throw BadRequest(fmt::format(
          "{}: {} is on {}, the NCCL backend of rank {} takes tensors on "
          "cuda:{}",
          what, arg, t.device().str(), rank_, device_));
    }
  }

  void CheckCuda(cudaError_t rc, const char* call, const char* what) const {
    if (rc != cudaSuccess) {
      throw InternalError(fmt::format("rank {}: {} in {} failed: {}", rank_,
                                      call, what, cudaGetErrorString(rc)));
    }
  }

  void CheckNccl(ncclResult_t rc, const char* call, const char* what) const {
    if (rc != ncclSuccess) {
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
      const char* detail = ncclGetLastError(comm_);
#else
      const char* detail = "";
#endif
      throw InternalError(fmt::format("rank {}: {} in {} failed: {} ({})",
                                      rank_, call, what, ncclGetErrorString(rc),
                                      detail ? detail : ""));
    }
  }

  [[noreturn]] void Expire(const char* what, int64_t bytes) {
    broken_ = fmt::format(
        "rank {} of {}: {} of {} bytes timed out after {} ms (a peer rank "
        "crashed, hangs, or skipped the call)",
        rank_, size_, what, bytes, timeout_ms_);
    // Frees the GPU from the kernel waiting for the missing peer.
    ncclCommAbort(comm_);
    comm_ = nullptr;
    throw Timeout(broken_);
  }

#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
  void WaitInit(double start) {
    for (;;) {
      ncclResult_t state = ncclSuccess;
      CheckNccl(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError",
                "construct");
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) {
        CheckNccl(state, "ncclCommInitRankConfig", "construct");
      }
      if (timeout_ms_ > 0 &&
          MonotonicSeconds() > start + static_cast<double>(timeout_ms_) / 1e3) {
        Expire("ncclCommInitRank", 0);
      }
      sched_yield();
    }
  }
#endif

  // Polls an event recorded after the operation (and NCCL's asynchronous
  // error state) until it completes or the deadline passes.
  void Wait(const char* what, int64_t bytes, double start) {
    CheckCuda(cudaEventRecord(done_, Stream()), "cudaEventRecord", what);
    for (;;) {
      const cudaError_t rc = cudaEventQuery(done_);
      if (rc == cudaSuccess) return;
      if (rc != cudaErrorNotReady) CheckCuda(rc, "cudaEventQuery", what);
      ncclResult_t state = ncclSuccess;
      CheckNccl(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError",
                what);
      CheckNccl(state, "(asynchronous NCCL error)", what);
      if (timeout_ms_ > 0 &&
          MonotonicSeconds() > start + static_cast<double>(timeout_ms_) / 1e3) {
        Expire(what, bytes);
      }
      sched_yield();
    }
  }

  std::unique_ptr<Communicator> bootstrap_;
  int64_t timeout_ms_ = 0;
  int rank_ = 0, size_ = 1, device_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaEvent_t done_ = nullptr;
  std::string broken_;
};

}  // namespace

std::unique_ptr<Communicator> MakeNcclCommunicator(
    std::unique_ptr<Communicator> bootstrap, int64_t timeout_ms) {
  CLINRL_CHECK(bootstrap != nullptr, "NCCL needs a bootstrap communicator");
  return std::make_unique<NcclCommunicator>(std::move(bootstrap), timeout_ms);
}

}  // namespace clinrl::distributed
