#include "policy/bpe_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <limits>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"

namespace clinrl::policy {
namespace {

std::string EncodeUtf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Inverse of ByteToUnicode over whole token strings: every code point of a
// byte-level token stands for one byte.
bool UnicodeToBytes(const std::string& token, std::string* out) {
  static const std::unordered_map<uint32_t, uint8_t> kInverse = [] {
    std::unordered_map<uint32_t, uint8_t> m;
    const auto& forward = BpeTokenizer::ByteToUnicode();
    for (int b = 0; b < 256; ++b) {
      const std::string& u = forward[b];
      uint32_t cp = static_cast<uint8_t>(u[0]);
      if (u.size() == 2) cp = ((cp & 0x1F) << 6) | (u[1] & 0x3F);
      m[cp] = static_cast<uint8_t>(b);
    }
    return m;
  }();
  out->clear();
  for (size_t i = 0; i < token.size();) {
    const uint8_t c = static_cast<uint8_t>(token[i]);
    uint32_t cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < token.size()) {
      cp = ((c & 0x1F) << 6) | (token[i + 1] & 0x3F);
      i += 2;
    } else {
      return false;  // byte-level stand-ins are all below U+0800
    }
    auto it = kInverse.find(cp);
    if (it == kInverse.end()) return false;
    out->push_back(static_cast<char>(it->second));
  }
  return true;
}

std::string BytesToUnicode(const std::string& bytes) {
  const auto& table = BpeTokenizer::ByteToUnicode();
  std::string s;
  for (char c : bytes) s += table[static_cast<uint8_t>(c)];
  return s;
}

uint64_t PairKey(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
}

nlohmann::json ByteLevelStep(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", false},
          {"use_regex", use_regex}};
}

}  // namespace

const std::vector<std::string>& BpeTokenizer::ByteToUnicode() {
  static const std::vector<std::string> kTable = [] {
    std::vector<int> cps(256, -1);
    for (int b = '!'; b <= '~'; ++b) cps[b] = b;
    for (int b = 0xA1; b <= 0xAC; ++b) cps[b] = b;
    for (int b = 0xAE; b <= 0xFF; ++b) cps[b] = b;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      if (cps[b] < 0) cps[b] = 256 + n++;
    }
    std::vector<std::string> table(256);
    for (int b = 0; b < 256; ++b) table[b] = EncodeUtf8(cps[b]);
    return table;
  }();
  return kTable;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::Load(const std::string& path) {
  std::string file = path;
  std::string dir = path;
  const std::string suffix = "tokenizer.json";
  if (file.size() >= suffix.size() &&
      file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const size_t slash = file.rfind('/');
    dir = slash == std::string::npos ? "." : file.substr(0, slash);
  } else {
    file = path + "/tokenizer.json";
  }
  std::ifstream probe(file);
  if (!probe.good()) {
    throw NotFound(
        fmt::format("tokenizer: '{}' does not exist; expected a folder with "
                    "tokenizer.json (or \"byte\")",
                    file));
  }
  probe.close();
  auto tok = FromJson(config::LoadJsonFile(file), file);
  tok->source_file_ = file;
  std::ifstream cfg(dir + "/tokenizer_config.json");
  if (cfg.good()) tok->source_config_ = dir + "/tokenizer_config.json";
  tok->ReadChatTemplate(dir);
  if (std::ifstream(dir + "/chat_template.jinja").good()) {
    tok->source_chat_template_ = dir + "/chat_template.jinja";
  }
  return tok;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::FromJson(const nlohmann::json& doc,
                                                     const std::string& where) {
  std::unique_ptr<BpeTokenizer> tok(new BpeTokenizer());
  auto fail = [&](const std::string& field, const std::string& got,
                  const std::string& expected) {
    throw BadRequest(fmt::format("{}: {}: {} is not supported; expected {}",
                                 where, field, got, expected));
  };
  if (!doc.is_object() || !doc.contains("model") || !doc["model"].is_object()) {
    throw BadRequest(fmt::format("{}: field model is missing", where));
  }
  const auto& model = doc["model"];
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") fail("model.type", type, "BPE");
  if (model.value("byte_fallback", false)) {
    fail("model.byte_fallback", "true", "false (byte-level BPE)");
  }
  tok->ignore_merges_ = model.value("ignore_merges", false);

  // Normaliser: none or NFC.
  const auto& norm =
      doc.contains("normalizer") ? doc["normalizer"] : nlohmann::json();
  tok->nfc_ = false;
  if (!norm.is_null()) {
    const std::string ntype = norm.value("type", std::string());
    if (ntype == "NFC") {
      tok->nfc_ = true;
    } else if (ntype == "Sequence" && norm.contains("normalizers") &&
               norm["normalizers"].size() == 1 &&
               norm["normalizers"][0].value("type", std::string()) == "NFC") {
      tok->nfc_ = true;
    } else {
      fail("normalizer", norm.dump().substr(0, 120), "null or NFC");
    }
  }

  // Pre-tokeniser: ByteLevel with its GPT-2 regex, or Split(regex) then
  // ByteLevel without regex.
  const auto& pre =
      doc.contains("pre_tokenizer") ? doc["pre_tokenizer"] : nlohmann::json();
  const std::string ptype = pre.is_object() ? pre.value("type", "") : "";
  // add_prefix_space would put a space before every piece; no supported
  // family sets it, so a file that does is refused rather than misread.
  auto check_no_prefix_space = [&](const nlohmann::json& step,
                                   const std::string& field) {
    if (step.value("add_prefix_space", false)) {
      fail(field + ".add_prefix_space", "true", "false");
    }
  };
  if (ptype == "ByteLevel" && pre.value("use_regex", true)) {
    check_no_prefix_space(pre, "pre_tokenizer");
    tok->pattern_ = SplitPattern::kGpt2;
  } else if (ptype == "Sequence" && pre.contains("pretokenizers") &&
             pre["pretokenizers"].size() == 2 &&
             pre["pretokenizers"][0].value("type", "") == "Split" &&
             pre["pretokenizers"][1].value("type", "") == "ByteLevel") {
    const auto& split = pre["pretokenizers"][0];
    const auto& byte_level = pre["pretokenizers"][1];
    // Other behaviours drop or merge the matches instead of keeping each as
    // its own piece; a second regex in ByteLevel would cut them again.
    const std::string behavior = split.value("behavior", "Isolated");
    if (behavior != "Isolated") {
      fail("pre_tokenizer.pretokenizers[0].behavior", behavior, "Isolated");
    }
    if (split.value("invert", false)) {
      fail("pre_tokenizer.pretokenizers[0].invert", "true", "false");
    }
    if (byte_level.value("use_regex", true)) {
      fail("pre_tokenizer.pretokenizers[1].use_regex", "true", "false");
    }
    check_no_prefix_space(byte_level, "pre_tokenizer.pretokenizers[1]");
    const std::string regex =
        split.contains("pattern") && split["pattern"].contains("Regex")
            ? split["pattern"]["Regex"].get<std::string>()
            : "";
    auto p = SplitPatternFromRegex(regex);
    if (!p) {
      fail("pre_tokenizer.pretokenizers[0].pattern.Regex", "'" + regex + "'",
           "the GPT-2, Qwen2 or Llama 3 split regex");
    }
    tok->pattern_ = *p;
  } else {
    fail("pre_tokenizer", pre.dump().substr(0, 120),
         "ByteLevel, or Sequence[Split(regex), ByteLevel]");
  }

  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    throw BadRequest(fmt::format("{}: model.vocab is missing", where));
  }
  int64_t size = 0;
  for (const auto& [token, id] : model["vocab"].items()) {
    size = std::max<int64_t>(size, id.get<int64_t>() + 1);
  }
  if (doc.contains("added_tokens")) {
    for (const auto& a : doc["added_tokens"]) {
      size = std::max<int64_t>(size, a.at("id").get<int64_t>() + 1);
    }
  }
  tok->bytes_.assign(size, std::string());
  tok->special_.assign(size, false);
  std::unordered_map<std::string, int64_t> by_unicode;
  by_unicode.reserve(model["vocab"].size());
  std::string raw;
  for (const auto& [token, id_json] : model["vocab"].items()) {
    const int64_t id = id_json.get<int64_t>();
    if (id < 0)
      fail("model.vocab['" + token + "']", std::to_string(id), ">= 0");
    if (!UnicodeToBytes(token, &raw)) {
      fail("model.vocab['" + token + "']", "a token outside the byte alphabet",
           "byte-level tokens");
    }
    tok->bytes_[id] = raw;
    by_unicode.emplace(token, id);
  }
  if (model.contains("merges")) {
    const auto& merges = model["merges"];
    tok->merges_.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      std::string a, b;
      if (merges[r].is_string()) {
        const std::string m = merges[r].get<std::string>();
        const size_t space = m.find(' ');
        if (space == std::string::npos) {
          fail(fmt::format("model.merges[{}]", r), "'" + m + "'", "'a b'");
        }
        a = m.substr(0, space);
        b = m.substr(space + 1);
      } else if (merges[r].is_array() && merges[r].size() == 2) {
        a = merges[r][0].get<std::string>();
        b = merges[r][1].get<std::string>();
      } else {
        fail(fmt::format("model.merges[{}]", r), merges[r].dump(),
             "\"a b\" or [a, b]");
      }
      auto ia = by_unicode.find(a), ib = by_unicode.find(b),
           im = by_unicode.find(a + b);
      if (ia == by_unicode.end() || ib == by_unicode.end() ||
          im == by_unicode.end()) {
        throw BadRequest(fmt::format(
            "{}: model.merges[{}] ('{}', '{}') names a token missing from "
            "model.vocab",
            where, r, a, b));
      }
      tok->merges_.emplace_back(ia->second, ib->second);
    }
  }
  if (doc.contains("added_tokens")) {
    for (const auto& a : doc["added_tokens"]) {
      AddedToken t{a.at("content").get<std::string>(),
                   a.at("id").get<int64_t>(), a.value("special", false)};
      tok->bytes_[t.id] = t.content;
      tok->special_[t.id] = t.special;
      tok->added_.push_back(t);
    }
  }
  tok->Finish();
  return tok;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::FromByteMerges(
    const std::vector<std::pair<std::string, std::string>>& merges,
    const std::vector<std::string>& special_tokens, SplitPattern pattern) {
  std::unique_ptr<BpeTokenizer> tok(new BpeTokenizer());
  tok->pattern_ = pattern;
  tok->nfc_ = true;
  for (int b = 0; b < 256; ++b) {
    tok->bytes_.push_back(std::string(1, static_cast<char>(b)));
  }
  std::unordered_map<std::string, int64_t> ids;
  for (int b = 0; b < 256; ++b) ids[tok->bytes_[b]] = b;
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    auto ia = ids.find(a), ib = ids.find(b);
    if (ia == ids.end() || ib == ids.end()) {
      throw BadRequest(fmt::format(
          "merges[{}]: a side is not a token made by an earlier merge", r));
    }
    const std::string merged = a + b;
    tok->merges_.emplace_back(ia->second, ib->second);
    // Two merge paths may build the same bytes ("ab"+"c", "a"+"bc"); as in
    // the tokenizers trainer, the later merge reuses the token.
    if (ids.count(merged)) continue;
    ids[merged] = static_cast<int64_t>(tok->bytes_.size());
    tok->bytes_.push_back(merged);
  }
  tok->special_.assign(tok->bytes_.size(), false);
  for (const auto& s : special_tokens) {
    const int64_t id = static_cast<int64_t>(tok->bytes_.size());
    tok->bytes_.push_back(s);
    tok->special_.push_back(true);
    tok->added_.push_back({s, id, true});
  }
  tok->Finish();
  return tok;
}

void BpeTokenizer::Finish() {
  ordinary_ids_.clear();
  std::vector<bool> is_added(bytes_.size(), false);
  for (const auto& a : added_) is_added[a.id] = true;
  for (int64_t id = 0; id < static_cast<int64_t>(bytes_.size()); ++id) {
    if (!is_added[id] && !bytes_[id].empty()) {
      ordinary_ids_.emplace(bytes_[id], id);
    }
  }
  for (int b = 0; b < 256; ++b) {
    auto it = ordinary_ids_.find(std::string(1, static_cast<char>(b)));
    if (it == ordinary_ids_.end()) {
      throw BadRequest(fmt::format(
          "tokenizer: byte 0x{:02x} has no token; a byte-level vocab needs all "
          "256",
          b));
    }
    byte_ids_[b] = static_cast<int32_t>(it->second);
  }
  merge_lookup_.clear();
  merge_lookup_.reserve(merges_.size());
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto [a, b] = merges_[r];
    auto it = ordinary_ids_.find(bytes_[a] + bytes_[b]);
    CLINRL_CHECK(it != ordinary_ids_.end(), "merge {} has no result token", r);
    merge_lookup_.emplace(PairKey(a, b),
                          std::make_pair(static_cast<int32_t>(r),
                                         static_cast<int32_t>(it->second)));
  }
  added_ids_.clear();
  added_by_byte_.assign(256, {});
  for (const auto& a : added_) {
    added_ids_[a.content] = a.id;
    if (!a.content.empty()) {
      added_by_byte_[static_cast<uint8_t>(a.content[0])].push_back(&a);
    }
  }
  for (auto& list : added_by_byte_) {
    std::sort(list.begin(), list.end(), [](const auto* x, const auto* y) {
      return x->content.size() > y->content.size();
    });
  }
}

void BpeTokenizer::EncodePiece(std::string_view piece,
                               std::vector<int64_t>* ids) const {
  if (ignore_merges_) {
    auto it = ordinary_ids_.find(std::string(piece));
    if (it != ordinary_ids_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  const std::string key(piece);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> symbols;
  symbols.reserve(piece.size());
  for (char c : piece) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
  // Repeatedly apply the lowest-ranked merge, leftmost first, as the
  // reference BPE does.
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    size_t best_pos = 0;
    int32_t best_id = -1;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merge_lookup_.find(PairKey(symbols[i], symbols[i + 1]));
      if (it != merge_lookup_.end() && it->second.first < best_rank) {
        best_rank = it->second.first;
        best_pos = i;
        best_id = it->second.second;
      }
    }
    if (best_id < 0) break;
    symbols[best_pos] = best_id;
    symbols.erase(symbols.begin() + best_pos + 1);
  }
  ids->insert(ids->end(), symbols.begin(), symbols.end());
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() > 200000) cache_.clear();
  cache_.emplace(key, std::move(symbols));
}

void BpeTokenizer::EncodeOrdinary(std::string_view text,
                                  std::vector<int64_t>* ids) const {
  if (text.empty()) return;
  const std::string normalized = nfc_ ? NormalizeNfc(text) : std::string(text);
  if (merges_.empty()) {
    for (char c : normalized)
      ids->push_back(byte_ids_[static_cast<uint8_t>(c)]);
    return;
  }
  std::vector<std::string_view> pieces;
  SplitText(normalized, pattern_, &pieces);
  for (auto piece : pieces) EncodePiece(piece, ids);
}

std::vector<int64_t> BpeTokenizer::Encode(std::string_view text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 4);
  size_t start = 0;  // beginning of the pending ordinary text
  size_t i = 0;
  while (i < text.size()) {
    const AddedToken* hit = nullptr;
    for (const AddedToken* a : added_by_byte_[static_cast<uint8_t>(text[i])]) {
      if (text.compare(i, a->content.size(), a->content) == 0) {
        hit = a;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    EncodeOrdinary(text.substr(start, i - start), &ids);
    ids.push_back(hit->id);
    i += hit->content.size();
    start = i;
  }
  EncodeOrdinary(text.substr(start), &ids);
  return ids;
}

const std::string& BpeTokenizer::TokenBytes(int64_t id) const {
  if (id < 0 || id >= size()) {
    throw BadRequest(fmt::format(
        "token id {} is outside the tokenizer's {} ids", id, size()));
  }
  return bytes_[id];
}

bool BpeTokenizer::IsSpecial(int64_t id) const {
  return id >= 0 && id < size() && special_[id];
}

std::optional<int64_t> BpeTokenizer::TokenId(const std::string& text) const {
  auto it = added_ids_.find(text);
  if (it != added_ids_.end()) return it->second;
  return std::nullopt;
}

nlohmann::ordered_json BpeTokenizer::ToJson() const {
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  std::vector<bool> is_added(bytes_.size(), false);
  for (const auto& a : added_) {
    is_added[a.id] = true;
    added.push_back({{"id", a.id},
                     {"content", a.content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", a.special}});
  }
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int64_t id = 0; id < size(); ++id) {
    if (!is_added[id] && !bytes_[id].empty()) {
      vocab[BytesToUnicode(bytes_[id])] = id;
    }
  }
  nlohmann::ordered_json merges = nlohmann::ordered_json::array();
  for (const auto& [a, b] : merges_) {
    merges.push_back({BytesToUnicode(bytes_[a]), BytesToUnicode(bytes_[b])});
  }
  nlohmann::ordered_json pre;
  if (pattern_ == SplitPattern::kGpt2) {
    pre = ByteLevelStep(true);
  } else {
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Split"},
              {"pattern", {{"Regex", SplitPatternRegex(pattern_)}}},
              {"behavior", "Isolated"},
              {"invert", false}},
             ByteLevelStep(false)}}};
  }
  nlohmann::ordered_json doc = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nfc_ ? nlohmann::ordered_json{{"type", "NFC"}} : nullptr},
      {"pre_tokenizer", pre},
      {"post_processor", ByteLevelStep(false)},
      {"decoder", ByteLevelStep(false)},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", ignore_merges_},
        {"vocab", vocab},
        {"merges", merges}}}};
  return doc;
}

void BpeTokenizer::Save(const std::string& dir) const {
  MakeDirectories(dir);
  // transformers reads chat_template.jinja before the config's template, so
  // a loaded one goes with the tokenizer whatever the config says.
  if (!source_chat_template_.empty() &&
      source_chat_template_ != dir + "/chat_template.jinja") {
    WriteFileAtomic(dir + "/chat_template.jinja",
                    ReadFile(source_chat_template_));
  }
  if (!source_file_.empty()) {
    if (source_file_ != dir + "/tokenizer.json") {
      WriteFileAtomic(dir + "/tokenizer.json", ReadFile(source_file_));
    }
    if (!source_config_.empty()) {
      if (source_config_ != dir + "/tokenizer_config.json") {
        WriteFileAtomic(dir + "/tokenizer_config.json",
                        ReadFile(source_config_));
      }

      return;
    }
  } else {
    WriteFileAtomic(dir + "/tokenizer.json", ToJson().dump() + "\n");
  }
  const auto eot = TokenId("<|endoftext|>");
  const auto im_end = TokenId("<|im_end|>");
  nlohmann::json added_decoder = nlohmann::json::object();
  for (const auto& a : added_) {
    added_decoder[std::to_string(a.id)] = {
        {"content", a.content}, {"lstrip", false},      {"normalized", false},
        {"rstrip", false},      {"single_word", false}, {"special", a.special}};
  }
  nlohmann::json config = {
      {"tokenizer_class", "PreTrainedTokenizerFast"},
      {"added_tokens_decoder", added_decoder},
      {"bos_token", nullptr},
      {"eos_token", im_end ? "<|im_end|>" : (eot ? "<|endoftext|>" : "")},
      {"pad_token", eot ? "<|endoftext|>" : ""},
      {"clean_up_tokenization_spaces", false},
      {"model_max_length", 131072},
      {"chat_template", ChatMlTemplate()}};
  WriteFileAtomic(dir + "/tokenizer_config.json", config.dump(2) + "\n");
}

}  // namespace clinrl::policy
