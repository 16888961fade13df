// `clinrl serve` end to end: a tiny random model folder made with `clinrl
// model init`, the server started on port 0 (its URL read from its first
// line), and tests/serve/openai_client_test.py driving it with the official
// `openai` client under the venv's Python (a missing Python or package fails
// the test). Then SIGTERM must stop the server cleanly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "core/atomic_file.h"
#include "tests/policy/test_util.h"

namespace clinrl::serve {
namespace {

using policy::testing::TempDir;

const char* kTinyConfig = R"({"model_type": "qwen2", "hidden_size": 64,
  "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "vocab_size": 300, "max_position_embeddings": 256,
  "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true})";

struct ShellResult {
  int status = -1;
  std::string output;
};

ShellResult Shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed: " + command};
  ShellResult run;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    run.output.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// `clinrl serve` as a child process whose stdout we read.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& args,
                         const std::string& log) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
      ::close(fds[0]);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~ServerProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }

  // The next line of stdout, waiting at most `seconds`; "" on timeout/EOF.
  std::string ReadLine(int seconds) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    std::string line;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char c;
      if (::read(out_, &c, 1) != 1) break;
      if (c == '\n') return line;
      line += c;
    }
    return line;
  }

  // SIGTERM, then the exit status (waiting at most `seconds`), or -1.
  int Terminate(int seconds) {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < seconds * 10; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }

  bool started() const { return pid_ > 0 && out_ >= 0; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool reaped_ = false;
};

TEST(ServeCliTest, OpenAiClientGetsBatchedAnswers) {
  ASSERT_TRUE(std::filesystem::exists(CLINRL_PYTHON))
      << "CLINRL_PYTHON " << CLINRL_PYTHON
      << " is missing: run launch/setup to create the venv";
  TempDir dir;
  WriteFileAtomic(dir.path() + "/tiny.json", kTinyConfig);
  const std::string model = dir.path() + "/tiny-model";
  const ShellResult init =
      Shell(std::string(CLINRL_BINARY) + " model init --config " + dir.path() +
            "/tiny.json --out " + model);
  ASSERT_EQ(init.status, 0) << init.output;

  const std::string log = dir.path() + "/serve.log";
  ServerProcess server({CLINRL_BINARY, "serve", model, "--port", "0",
                        "--threads", "2", "--max-batch", "64"},
                       log);
  ASSERT_TRUE(server.started());
  const std::string first = server.ReadLine(120);
  const size_t at = first.find("http://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << "first line: " << first;
  const std::string url = first.substr(at, first.find(' ', at) - at);

  const ShellResult client =
      Shell(std::string("timeout 600 '") + CLINRL_PYTHON +
            "' '" CLINRL_SOURCE_DIR "/tests/serve/openai_client_test.py' '" +
            url + "' tiny-model");
  EXPECT_EQ(client.status, 0) << client.output;
  std::cout << client.output;

  EXPECT_EQ(server.Terminate(30), 143);  // 128 + SIGTERM: a clean stop
  const std::string stopped = server.ReadLine(5);
  EXPECT_NE(stopped.find("clinrl serve: stopped"), std::string::npos)
      << stopped;
}

}  // namespace
}  // namespace clinrl::serve
