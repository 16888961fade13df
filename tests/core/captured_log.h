// What clinrl logs while a test runs, for tests that check that a refusal
// or a fault was logged. spdlog's sink list is not safe to change while
// another thread logs (the servers these tests start do), so one
// dist_sink is added to the default logger once per process and never
// removed; each CapturedLog adds its ring buffer to that dist_sink, whose
// own list is guarded by a mutex.
#pragma once

#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace clinrl::testing {

class CapturedLog {
 public:
  CapturedLog() : ring_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256)) {
    Shared()->add_sink(ring_);
  }
  ~CapturedLog() { Shared()->remove_sink(ring_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  // Whether a line containing `text` was logged, waiting up to `wait` for
  // it (a server logs from its own thread).
  bool Contains(const std::string& text,
                std::chrono::milliseconds wait = std::chrono::milliseconds(0))
      const {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (true) {
      for (const std::string& line : ring_->last_formatted()) {
        if (line.find(text) != std::string::npos) return true;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  static std::shared_ptr<spdlog::sinks::dist_sink_mt> Shared() {
    static const auto sinks = [] {
      auto made = std::make_shared<spdlog::sinks::dist_sink_mt>();
      spdlog::default_logger()->sinks().push_back(made);
      return made;
    }();
    return sinks;
  }

  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring_;
};

}  // namespace clinrl::testing
