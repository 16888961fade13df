// A child process started with posix_spawn (no fork of a threaded parent), used
// to run env servers in other processes: the Python adapter, or a C++ server
// that a test kills and restarts. The destructor kills and reaps the child.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace clinrl::envs {

class ChildProcess {
 public:
  // argv[0] is the program path (not searched on PATH). `extra_env` is added
  // to (and overrides) this process's environment.
  ChildProcess(std::vector<std::string> argv,
               std::map<std::string, std::string> extra_env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` and waits up to `wait_ms` for the exit (then SIGKILL).
  // Returns the wait status; safe to call twice.
  int Stop(int signal, int wait_ms = 5000);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string program_;
};

// The venv's interpreter (launch/setup: gymnasium, pyzmq), and the folder
// holding the clinrl_env package; the environment variables CLINRL_PYTHON and
// CLINRL_PYTHONPATH override the values fixed at build time.
std::string AdapterPython();
std::string PythonPackageDir();

}  // namespace clinrl::envs
