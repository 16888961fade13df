#include "envs/dx_dialogue/phrase_matcher.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace clinrl::envs::dx {
namespace {

TEST(PhraseMatcherTest, NormalisesCasePunctuationAndPlurals) {
  EXPECT_EQ(NormalizeText("Any Chest-Pains?"), "any chest pain");
  EXPECT_EQ(NormalizeText("Bell's palsy"), "bell palsy");
  EXPECT_EQ(NormalizeText("  glass  "), "glass");  // "ss" keeps its s
}

TEST(PhraseMatcherTest, LongestPhraseWinsAndOrderIsKept) {
  PhraseMatcher m;
  m.Add("back pain", 1, "test");
  m.Add("pain radiating to back", 2, "test");
  m.Add("fever", 3, "test");
  EXPECT_EQ(m.Match("any pain radiating to back?"), (std::vector<int>{2}));
  EXPECT_EQ(m.Match("fever and back pain"), (std::vector<int>{3, 1}));
  EXPECT_EQ(m.Match("fevers, fever"), (std::vector<int>{3}));
  EXPECT_TRUE(m.Match("feverish").empty());  // whole words only
  EXPECT_EQ(m.Exact("Back pains"), 1);
  EXPECT_EQ(m.Exact("back"), -1);
}

TEST(PhraseMatcherTest, RejectsAPhraseNamingTwoConcepts) {
  PhraseMatcher m;
  m.Add("cough", 1, "findings");
  m.Add("coughs", 1, "findings");  // same concept: fine
  try {
    m.Add("Coughs", 2, "findings[4].synonyms");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("findings[4].synonyms"),
              std::string::npos);
    EXPECT_NE(std::string(e.what()).find("two different concepts"),
              std::string::npos);
  }
  EXPECT_THROW(m.Add("?!", 3, "findings"), ConfigError);
}

}  // namespace
}  // namespace clinrl::envs::dx
