// Runs a checked-in Python reference script under the venv interpreter
// (CLINRL_PYTHON: torch, numpy, tensorboard, ...) on a JSON input and returns
// its JSON output.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace clinrl::testing {

inline nlohmann::json RunPythonReferenceArgs(const std::string& script,
                                             const std::string& args);

inline nlohmann::json RunPythonReference(const std::string& script,
                                         const nlohmann::json& input) {
  const std::string in_path =
      ::testing::TempDir() + "/" +
      ::testing::UnitTest::GetInstance()->current_test_info()->name() +
      "_input.json";
  std::ofstream(in_path) << input.dump();
  return RunPythonReferenceArgs(script, in_path);
}

// Runs `script ARGS` and parses its stdout as JSON.
inline nlohmann::json RunPythonReferenceArgs(const std::string& script,
                                             const std::string& args) {
  const std::string command = std::string(CLINRL_PYTHON) + " " +
                              CLINRL_SOURCE_DIR + "/" + script + " " + args;
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << command;
  if (!pipe) return {};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << command << "\n" << out;
  return nlohmann::json::parse(out);
}

}  // namespace clinrl::testing
