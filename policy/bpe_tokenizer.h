// Byte-level BPE as in Hugging Face tokenizer.json (GPT-2, Qwen2/Qwen3,
// Llama 3): NFC, regex split, bytes mapped to printable code points, merges
// by rank, added/special tokens matched before splitting. The byte-level
// tokenizer of tiny models is the same thing with no merges.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/pre_tokenizer.h"
#include "policy/tokenizer.h"

namespace clinrl::policy {

struct AddedToken {
  std::string content;
  int64_t id;
  bool special;
};

class BpeTokenizer : public Tokenizer {
 public:
  // Reads DIR/tokenizer.json (`path` may also name the file itself).
  static std::unique_ptr<BpeTokenizer> Load(const std::string& path);
  static std::unique_ptr<BpeTokenizer> FromJson(const nlohmann::json& doc,
                                                const std::string& where);
  // Ids 0..255 are the bytes, then one id per new merge result (in merge
  // order), then `special_tokens`. Merges are pairs of byte strings.
  static std::unique_ptr<BpeTokenizer> FromByteMerges(
      const std::vector<std::pair<std::string, std::string>>& merges,
      const std::vector<std::string>& special_tokens,
      SplitPattern pattern = SplitPattern::kQwen2);

  std::vector<int64_t> Encode(std::string_view text) const override;
  const std::string& TokenBytes(int64_t id) const override;
  bool IsSpecial(int64_t id) const override;
  int64_t size() const override { return static_cast<int64_t>(bytes_.size()); }
  std::optional<int64_t> TokenId(const std::string& text) const override;
  void Save(const std::string& dir) const override;

  nlohmann::ordered_json ToJson() const;
  int64_t num_merges() const { return static_cast<int64_t>(merges_.size()); }
  const std::vector<AddedToken>& added_tokens() const { return added_; }

  // GPT-2's printable stand-in for each byte, as UTF-8.
  static const std::vector<std::string>& ByteToUnicode();

 private:
  BpeTokenizer() = default;
  void Finish();  // builds the lookup tables from bytes_, merges_, added_
  void EncodeOrdinary(std::string_view text, std::vector<int64_t>* ids) const;
  void EncodePiece(std::string_view piece, std::vector<int64_t>* ids) const;

  SplitPattern pattern_ = SplitPattern::kQwen2;
  bool nfc_ = true;
  bool ignore_merges_ = false;
  std::vector<std::string> bytes_;  // id -> raw bytes ("" for holes)
  std::vector<bool> special_;
  std::unordered_map<std::string, int64_t> ordinary_ids_;  // raw bytes -> id
  int32_t byte_ids_[256] = {};
  // (left id, right id) -> (rank, merged id)
  std::vector<std::pair<int64_t, int64_t>> merges_;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merge_lookup_;
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, int64_t> added_ids_;
  // Added tokens grouped by first byte, longest first, for matching in text.
  std::vector<std::vector<const AddedToken*>> added_by_byte_;
  std::string source_file_;  // Save copies a loaded file verbatim
  std::string source_config_;
  std::string source_chat_template_;  // a loaded chat_template.jinja
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace clinrl::policy
