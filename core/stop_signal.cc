#include "core/stop_signal.h"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace clinrl {

namespace {

std::atomic<int> received{0};

void OnStopSignal(int signal) {
  int expected = 0;
  if (received.compare_exchange_strong(expected, signal)) return;
  // A second signal: the default action, now (async-signal-safe calls only).
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal, &action, nullptr);
  raise(signal);
}

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  // System calls resume after the handler: the loop polls the flag at step
  // boundaries, and ZeroMQ and file writes must not fail with EINTR.
  action.sa_flags = SA_RESTART;
  for (int signal : {SIGTERM, SIGINT}) {
    if (sigaction(signal, &action, nullptr) != 0) {
      throw IoError(fmt::format("installing the handler of signal {}: {}",
                                signal, std::strerror(errno)));
    }
  }
}

int StopSignal() { return received.load(); }

void ClearStopSignal() { received.store(0); }

}  // namespace clinrl
