#include "tests/policy/test_util.h"

#include <stdlib.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace clinrl::policy::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base ? base : "/tmp") + "/clinrl_policy_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ModelConfig TinyConfig(const std::string& model_type) {
  ModelConfig c;
  c.model_type = model_type;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.vocab_size = 300;
  c.max_position_embeddings = 512;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = model_type == "llama" ? 500000.0 : 10000.0;
  c.tie_word_embeddings = model_type != "llama";
  c.attention_bias = model_type == "qwen2";
  c.qk_norm = model_type == "qwen3";
  if (model_type == "llama") {
    // Llama 3.1 rope scaling with a short original context, so that the
    // 8 frequencies of head_dim 16 fall in all three bands (kept, smoothed,
    // divided by the factor).
    c.rope_scaling_factor = 8.0;
    c.rope_low_freq_factor = 1.0;
    c.rope_high_freq_factor = 4.0;
    c.rope_original_max_position = 64;
  }
  return c;
}

Transformer SharpTinyModel(const std::string& model_type) {
  Transformer m(TinyConfig(model_type));
  m->ResetParameters(21);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) {
    if (p.dim() == 2) p.mul_(5.0);
  }
  m->eval();
  return m;
}

int RunShell(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1) return -1;
  return WEXITSTATUS(status);
}

CommandOutput RunCaptured(const std::string& command) {
  TempDir dir;
  const std::string out = dir.path() + "/stdout";
  const std::string err = dir.path() + "/stderr";
  CommandOutput result;
  result.status =
      RunShell("(" + command + ") > '" + out + "' 2> '" + err + "'");
  result.out = ReadTextFile(out);
  result.err = ReadTextFile(err);
  return result;
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.flush();
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace clinrl::policy::testing
