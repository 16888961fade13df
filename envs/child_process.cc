#include "envs/child_process.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/error.h"

extern char** environ;

namespace clinrl::envs {

ChildProcess::ChildProcess(std::vector<std::string> argv,
                           std::map<std::string, std::string> extra_env) {
  CLINRL_CHECK(!argv.empty(), "ChildProcess needs a program");
  program_ = argv[0];
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string key = entry.substr(0, entry.find('='));
    if (extra_env.count(key) == 0) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : extra_env) env_strings.push_back(k + "=" + v);
  std::vector<char*> c_argv, c_env;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  for (auto& e : env_strings) c_env.push_back(e.data());
  c_env.push_back(nullptr);
  const int rc = posix_spawn(&pid_, program_.c_str(), nullptr, nullptr,
                             c_argv.data(), c_env.data());
  if (rc != 0) {
    throw IoError(fmt::format("posix_spawn '{}' failed: {}", program_,
                              std::strerror(rc)));
  }
}

ChildProcess::~ChildProcess() {
  try {
    Stop(SIGKILL, 2000);
  } catch (...) {
    // A destructor must not throw; the child is gone or unreapable.
  }
}

bool ChildProcess::running() {
  if (reaped_) return false;
  const pid_t r = waitpid(pid_, &status_, WNOHANG);
  CLINRL_CHECK_ERRNO(r >= 0, "waitpid", "polling child '{}' (pid {})", program_,
                     pid_);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

int ChildProcess::Stop(int signal, int wait_ms) {
  if (!running()) return status_;
  CLINRL_CHECK_ERRNO(kill(pid_, signal) == 0 || errno == ESRCH, "kill",
                     "signalling child '{}' (pid {})", program_, pid_);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      CLINRL_CHECK_ERRNO(kill(pid_, SIGKILL) == 0 || errno == ESRCH, "kill",
                         "killing child '{}' (pid {})", program_, pid_);
      CLINRL_CHECK_ERRNO(waitpid(pid_, &status_, 0) == pid_, "waitpid",
                         "reaping child '{}' (pid {})", program_, pid_);
      reaped_ = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

std::string AdapterPython() {
  if (const char* p = std::getenv("CLINRL_PYTHON"); p != nullptr && *p) {
    return p;
  }
  return CLINRL_BUILD_PYTHON;
}

std::string PythonPackageDir() {
  if (const char* p = std::getenv("CLINRL_PYTHONPATH"); p != nullptr && *p) {
    return p;
  }
  return CLINRL_BUILD_PYTHON_DIR;
}

}  // namespace clinrl::envs
