// `clinrl serve` started as a user starts it (`--port 0`), for tests: the
// base URL it listens on is read from the first line it prints ("... on
// http://127.0.0.1:PORT ...").
#pragma once

#include <string>
#include <vector>

#include "tests/cli/background_process.h"

namespace clinrl::serve::testing {

class ServedModel {
 public:
  // `clinrl serve model --port 0` plus `options` (threads, batch), stderr
  // to `log`; waits up to two minutes for the first line.
  ServedModel(const std::string& model, const std::string& log,
              const std::vector<std::string>& options = {"--threads", "1"})
      : process_(Args(model, options), log) {
    if (!process_.started()) return;
    first_line_ = process_.ReadLine(120);
    const size_t at = first_line_.find("http://127.0.0.1:");
    if (at != std::string::npos) {
      url_ = first_line_.substr(at, first_line_.find(' ', at) - at);
    }
  }

  // "" when the server did not start or printed no URL; first_line() then
  // shows what it said.
  const std::string& url() const { return url_; }
  const std::string& first_line() const { return first_line_; }
  // The next line it prints, waiting up to `seconds`.
  std::string ReadLine(int seconds) { return process_.ReadLine(seconds); }
  // SIGTERM; the exit status (143 for a clean stop).
  int Stop() { return process_.Terminate(30); }

 private:
  static std::vector<std::string> Args(
      const std::string& model, const std::vector<std::string>& options) {
    std::vector<std::string> args = {CLINRL_BINARY, "serve", model, "--port",
                                     "0"};
    args.insert(args.end(), options.begin(), options.end());
    return args;
  }

  clinrl::testing::BackgroundProcess process_;
  std::string first_line_, url_;
};

}  // namespace clinrl::serve::testing
