// A byte-level tokenizer folder with Llama 3's special tokens and Llama
// 3.2's published chat template (tests/policy/chat_templates/), so rollout
// tests can run episodes under a chat format other than the built-in ChatML.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "policy/bpe_tokenizer.h"

namespace clinrl::rollout::testing {

// Writes the folder at `dir` (replacing it) and returns `dir`.
inline std::string WriteLlamaTemplateTokenizer(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  policy::BpeTokenizer::FromByteMerges(
      {}, {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
           "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"})
      ->Save(dir);
  std::ifstream template_in(
      std::string(CLINRL_SOURCE_DIR) +
      "/tests/policy/chat_templates/llama3.2_instruct.jinja");
  std::stringstream template_text;
  template_text << template_in.rdbuf();
  nlohmann::json config;
  std::ifstream(dir + "/tokenizer_config.json") >> config;
  config["chat_template"] = template_text.str();
  config["bos_token"] = "<|begin_of_text|>";
  config["eos_token"] = "<|eot_id|>";
  std::ofstream(dir + "/tokenizer_config.json") << config.dump(2);
  return dir;
}

}  // namespace clinrl::rollout::testing
