// The Python example env (python/clinrl_env's triage_quiz) served by its own
// process on an ipc:// socket in a fresh folder, for the tests that drive it
// from C++. The process and the folder go when the object does.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "envs/child_process.h"
#include "envs/env_client.h"

namespace clinrl::testing {

struct PythonTriageServer {
  PythonTriageServer() {
    std::string dir =
        (std::filesystem::temp_directory_path() / "clinrl-py-triage-XXXXXX")
            .string();
    CLINRL_CHECK_ERRNO(mkdtemp(dir.data()) != nullptr, "mkdtemp",
                       "making a socket folder");
    folder = dir;
    endpoint = "ipc://" + dir + "/triage.sock";
    process = std::make_unique<envs::ChildProcess>(
        std::vector<std::string>{
            CLINRL_PYTHON, "-m", "clinrl_env", "serve", "--env",
            "clinrl_env.triage_quiz:TriageQuizEnv", "--name", "triage_quiz",
            "--endpoint", endpoint, "--log-level", "warning"},
        std::map<std::string, std::string>{
            {"PYTHONPATH", std::string(CLINRL_SOURCE_DIR) + "/python"}});
  }
  ~PythonTriageServer() {
    process.reset();
    std::error_code ignored;
    std::filesystem::remove_all(folder, ignored);
  }
  std::string folder;
  std::string endpoint;
  std::unique_ptr<envs::ChildProcess> process;
};

// Waits (at most 20 s) until the server answers a health request.
inline void AwaitServer(envs::EnvClient& client) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      client.Health();
      return;
    } catch (const Timeout&) {
    }
  }
  FAIL() << "the Python server never answered";
}

}  // namespace clinrl::testing
