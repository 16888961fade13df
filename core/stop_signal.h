// SIGTERM and SIGINT as a request to stop cleanly: what Slurm, Kubernetes
// and a user's Ctrl-C send (and SIGUSR2, which launch/mpirun sends through
// mpirun in their place). The first one sets a flag that the training loop
// reads after each step (it then writes a checkpoint and stops); a second
// one ends the process at once, abandoning the step in progress.
#pragma once

namespace clinrl {

// Installs the handling (idempotent): the signals are blocked in the calling
// thread, and so in every thread it starts afterwards, and taken by one
// sigwait thread, so no blocking call anywhere fails with EINTR. Call it
// before other threads start; one started earlier gets a handler instead.
void InstallStopSignalHandlers();

// The signal that asked the process to stop (SIGTERM, SIGINT, SIGUSR2), or
// 0.
int StopSignal();
inline bool StopRequested() { return StopSignal() != 0; }

// For tests: forgets a received signal.
void ClearStopSignal();

// The exit code of a process that stopped cleanly on `signal`: 128 + the
// signal number, as a shell reports a process killed by it (143 for
// SIGTERM, 130 for SIGINT), so schedulers and scripts read it the same way.
inline int StopExitCode(int signal) { return 128 + signal; }

}  // namespace clinrl
