// Shared fixtures of the policy tests: temporary folders and tiny configs.
#pragma once

#include <string>

#include "policy/model_config.h"
#include "policy/transformer.h"

namespace clinrl::policy::testing {

// A fresh folder under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A small config of the given family: GQA (4 query heads on 2 K/V heads),
// Qwen2 biases, Qwen3 q/k norms, Llama untied embeddings and Llama 3.1
// rope scaling.
ModelConfig TinyConfig(const std::string& model_type);

// A TinyConfig model, random init with its matrices scaled by 5 so that
// next-token distributions are far from uniform; in eval mode.
Transformer SharpTinyModel(const std::string& model_type);

// Runs a shell command; returns its exit status.
int RunShell(const std::string& command);

// A shell command's exit status and what it wrote (the reference scripts
// that tests run with the venv's Python).
struct CommandOutput {
  int status = -1;
  std::string out;
  std::string err;
};
CommandOutput RunCaptured(const std::string& command);

// The whole file (binary); throws std::runtime_error naming it when it
// cannot be read or written.
std::string ReadTextFile(const std::string& path);
void WriteTextFile(const std::string& path, const std::string& text);

}  // namespace clinrl::policy::testing
