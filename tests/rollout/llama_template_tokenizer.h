// Byte-level tokenizer folders with a chat template of their own (Llama
// 3.2's published one, tests/policy/chat_templates/, or any), so rollout
// tests can run episodes under a chat format other than the built-in ChatML.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "policy/bpe_tokenizer.h"

namespace clinrl::rollout::testing {

// Writes a byte-level tokenizer folder at `dir` (replacing it) with the
// given special tokens, chat template and bos/eos tokens; returns `dir`.
inline std::string WriteTemplateTokenizer(
    const std::string& dir, const std::vector<std::string>& special_tokens,
    const std::string& chat_template, const std::string& bos_token,
    const std::string& eos_token) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  policy::BpeTokenizer::FromByteMerges({}, special_tokens)->Save(dir);
  nlohmann::json config;
  std::ifstream(dir + "/tokenizer_config.json") >> config;
  config["chat_template"] = chat_template;
  config["bos_token"] = bos_token;
  config["eos_token"] = eos_token;
  std::ofstream(dir + "/tokenizer_config.json") << config.dump(2);
  return dir;
}

// Llama 3's special tokens and Llama 3.2's published template.
inline std::string WriteLlamaTemplateTokenizer(const std::string& dir) {
  std::ifstream template_in(
      std::string(CLINRL_SOURCE_DIR) +
      "/tests/policy/chat_templates/llama3.2_instruct.jinja");
  std::stringstream template_text;
  template_text << template_in.rdbuf();
  return WriteTemplateTokenizer(
      dir,
      {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
       "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"},
      template_text.str(), "<|begin_of_text|>", "<|eot_id|>");
}

}  // namespace clinrl::rollout::testing
