#include "rewards/deadline_executor.h"

#include <thread>

#include "core/log.h"

namespace clinrl::rewards {

DeadlineExecutor::DeadlineExecutor(int64_t max_threads)
    : max_threads_(max_threads < 1 ? 1 : max_threads) {}

DeadlineExecutor& DeadlineExecutor::Shared() {
  static DeadlineExecutor* shared = new DeadlineExecutor();
  return *shared;
}

void DeadlineExecutor::Post(std::function<void()> task) {
  bool start_thread = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
    // Idle threads will drain the queue; only grow when every thread is busy
    // with earlier work (possibly stuck in a plug-in that never returns).
    if (static_cast<int64_t>(queue_.size()) > idle_ &&
        threads_ < max_threads_) {
      ++threads_;
      ++idle_;  // counted idle until it picks its first task
      start_thread = true;
    }
  }
  if (start_thread) {
    std::thread(&DeadlineExecutor::WorkerLoop, this).detach();
    if (threads() % 32 == 0) {
      CLINRL_LOG_WARN("reward executor now has {} threads ({} busy)", threads(),
                      busy());
    }
  } else {
    ready_.notify_one();
  }
}

void DeadlineExecutor::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    ready_.wait(lock, [&] { return !queue_.empty(); });
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    --idle_;
    lock.unlock();
    // Tasks report their own failures; anything escaping is a bug in the
    // wrapper, and must not take the thread (and its queue) down with it.
    try {
      task();
    } catch (const std::exception& e) {
      CLINRL_LOG_ERROR("reward executor task threw: {}", e.what());
    } catch (...) {
      CLINRL_LOG_ERROR("reward executor task threw a non-exception");
    }
    task = nullptr;
    lock.lock();
    ++idle_;
  }
}

int64_t DeadlineExecutor::threads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_;
}

int64_t DeadlineExecutor::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_ - idle_;
}

}  // namespace clinrl::rewards
