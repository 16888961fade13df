// A thread pool for work that may never finish. A caller waits on its tasks
// with a deadline; a task that overruns keeps its thread (C++ cannot cancel
// it), so the pool starts another thread whenever work arrives and none is
// idle. One stuck plug-in therefore costs one thread, not the service.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace clinrl::rewards {

class DeadlineExecutor {
 public:
  // Threads are started on demand up to `max_threads`; beyond that, tasks
  // queue (and their callers time out if nothing frees up).
  explicit DeadlineExecutor(int64_t max_threads = 256);
  // Never destroyed in practice (Shared() leaks on purpose): a destructor
  // would have to join threads that may be stuck in a plug-in forever.
  ~DeadlineExecutor() = delete;

  // The process-wide executor of the reward components.
  static DeadlineExecutor& Shared();

  void Post(std::function<void()> task);

  int64_t threads() const;
  int64_t busy() const;

 private:
  void WorkerLoop();

  const int64_t max_threads_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  int64_t threads_ = 0;
  int64_t idle_ = 0;
};

}  // namespace clinrl::rewards
