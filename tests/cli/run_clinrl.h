// Runs the clinrl binary as a user would and captures what it prints.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
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

// A tiny GRPO run on the echo env (a 2-layer model, the byte tokenizer),
// run.out_dir <TempDir>/cli_runs, its folder removed; `patch` is merged over
// the config (JSON merge patch). Returns the config file's path.
inline std::string TinyEchoConfig(const std::string& name,
                                  const nlohmann::json& patch = {}) {
  using nlohmann::json;
  const std::string out = ::testing::TempDir() + "/cli_runs";
  std::filesystem::remove_all(out + "/" + name);
  json doc = {
      {"run", {{"name", name}, {"out_dir", out}, {"seed", 3}, {"threads", 1}}},
      {"policy",
       {{"init",
         {{"hidden_size", 32},
          {"intermediate_size", 64},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"max_position_embeddings", 2048}}},
        {"tokenizer", "byte"}}},
      {"envs",
       json::array({{{"name", "echo"}, {"options", {{"max_turns", 2}}}}})},
      {"rollout",
       {{"group_size", 4},
        {"tasks_per_step", 2},
        {"max_turns", 2},
        {"max_tokens_per_turn", 6}}},
      {"trainer",
       {{"stages", {"grpo"}},
        {"steps", 3},
        {"micro_batch", 4},
        {"checkpoint_every", 1}}},
      {"eval", {{"validation_episodes", 2}, {"test_episodes", 2}}}};
  if (!patch.is_null()) doc.merge_patch(patch);
  const std::string path = ::testing::TempDir() + "/" + name + ".json";
  std::ofstream(path) << doc.dump(2);
  return path;
}

}  // namespace clinrl::testing
