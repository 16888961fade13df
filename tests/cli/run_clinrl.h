// Runs the clinrl binary as a user would and captures what it prints.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace clinrl::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

inline CommandResult RunClinrl(const std::string& args) {
  const std::string command = std::string(CLINRL_BINARY) + " " + args + " 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.out.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A refused command: exit status 2 and exactly one line, "error: ...",
// containing `needle` (the key path or flag at fault).
inline void ExpectOneLineError(const CommandResult& r,
                               const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.out;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  EXPECT_EQ(r.out.rfind("error: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << r.out;
}

}  // namespace clinrl::testing
