#include "core/stop_signal.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace clinrl {

namespace {

std::atomic<int> received{0};

// The first signal is a request; a second one takes the default action now
// (async-signal-safe calls only: this also runs as a signal handler).
void OnStopSignal(int signal) {
  int expected = 0;
  if (received.compare_exchange_strong(expected, signal)) return;
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal, &action, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  raise(signal);
}

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  // launch/mpirun's stand-in for SIGTERM: Open MPI forwards SIGUSR2 to the
  // ranks, where a SIGTERM to mpirun would abort the job.
  sigaddset(&set, SIGUSR2);
  return set;
}

}  // namespace

void InstallStopSignalHandlers() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  // A handler, for threads started before this call.
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal : {SIGTERM, SIGINT, SIGUSR2}) {
    if (sigaction(signal, &action, nullptr) != 0) {
      throw IoError(fmt::format("installing the handler of signal {}: {}",
                                signal, std::strerror(errno)));
    }
  }
  // Blocked in this thread and every thread it starts from now on (ZeroMQ's,
  // the servers', MPI's), so the signal interrupts no blocking call there
  // (ZeroMQ's poll fails with EINTR whatever SA_RESTART says); one thread
  // takes it with sigwait instead.
  const sigset_t set = StopSignals();
  const int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (rc != 0) {
    throw IoError(
        fmt::format("blocking SIGTERM and SIGINT: {}", std::strerror(rc)));
  }
  std::thread([set] {
    while (true) {
      int signal = 0;
      if (sigwait(&set, &signal) == 0) OnStopSignal(signal);
    }
  }).detach();
}

int StopSignal() { return received.load(); }

void ClearStopSignal() { received.store(0); }

}  // namespace clinrl
