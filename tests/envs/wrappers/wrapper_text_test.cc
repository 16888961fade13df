// The text transformations of the robustness wrappers (envs/wrappers/) on
// literal input, with the expected output written by hand.
#include <gtest/gtest.h>

#include <cctype>
#include <set>

#include "envs/wrappers/demographic_swap.h"
#include "envs/wrappers/distractor.h"
#include "envs/wrappers/drug_name_swap.h"
#include "envs/wrappers/word_swap.h"

namespace clinrl::envs {
namespace {

TEST(WordSwapTest, WholeWordsOnlyAndCasePreserved) {
  const std::map<std::string, std::string> swaps = {
      {"lipitor", "atorvastatin"}, {"atorvastatin", "lipitor"}};
  EXPECT_EQ(SwapWords("Started LIPITOR; Lipitor's dose, (lipitor), lipitorx "
                      "and atorvastatin.",
                      swaps),
            "Started ATORVASTATIN; Atorvastatin's dose, (atorvastatin), "
            "lipitorx and lipitor.");
  EXPECT_EQ(InCaseOf("I", "you"), "You");
  EXPECT_EQ(InCaseOf("HE", "she"), "SHE");
  EXPECT_EQ(SwapWords("", swaps), "");
}

TEST(DrugNameSwapTest, TableHasFiftyPairsAndIsABijection) {
  const auto& pairs = DrugNamePairs();
  EXPECT_GE(pairs.size(), 50u);
  std::set<std::string> words;
  for (const auto& [brand, generic] : pairs) {
    for (const std::string& w : {brand, generic}) {
      EXPECT_TRUE(words.insert(w).second) << w << " appears twice";
      for (char c : w) {
        EXPECT_TRUE(std::islower(static_cast<unsigned char>(c))) << w;
      }
    }
  }
  // Swapping twice gives the text back: the map is its own inverse.
  const auto swaps = DrugNameSwaps("both");
  EXPECT_EQ(swaps.size(), 2 * pairs.size());
  for (const auto& [from, to] : swaps) EXPECT_EQ(swaps.at(to), from);
}

TEST(DrugNameSwapTest, SwapsBrandsAndGenericsBothWays) {
  const auto both = DrugNameSwaps("both");
  EXPECT_EQ(
      SwapWords("Takes Lipitor 20 mg and warfarin; ZOLOFT stopped.", both),
      "Takes Atorvastatin 20 mg and coumadin; SERTRALINE stopped.");
  EXPECT_EQ(SwapWords("Lipitor and atorvastatin", DrugNameSwaps("to_generic")),
            "Atorvastatin and atorvastatin");
  EXPECT_EQ(SwapWords("Lipitor and atorvastatin", DrugNameSwaps("to_brand")),
            "Lipitor and lipitor");
}

TEST(DistractorTest, SplitsSentencesAfterTheirPunctuation) {
  EXPECT_EQ(SplitSentences("61-year-old man. Chief complaint: cough."),
            (std::vector<std::string>{"61-year-old man.",
                                      "Chief complaint: cough."}));
  EXPECT_EQ(SplitSentences("Is it bad? Yes! T 37.1 C"),
            (std::vector<std::string>{"Is it bad?", "Yes!", "T 37.1 C"}));
}

TEST(DistractorTest, InsertsTheDrawnSentenceAtTheDrawnPlace) {
  const std::string text = "61-year-old man. Chief complaint: cough.";
  EXPECT_EQ(InsertDistractor(text, 0),
            "The patient mentions that the parking garage was nearly full "
            "today. 61-year-old man. Chief complaint: cough.");
  // 2^32 = 16 (mod 20) and 2^33 = 12 (mod 20): sentence 2 before sentence
  // 1, then sentence 16 at the end (place 2 of 0..2).
  EXPECT_EQ(InsertDistractor(text, (1ull << 32) + 6),
            "61-year-old man. The waiting room television is showing a "
            "cooking programme. Chief complaint: cough.");
  EXPECT_EQ(InsertDistractor(text, (2ull << 32) + 4),
            "61-year-old man. Chief complaint: cough. The patient asks "
            "where the nearest post office is.");
}

TEST(DistractorTest, BankSentencesHoldNoNumber) {
  EXPECT_GE(DistractorSentences().size(), 20u);
  for (const auto& s : DistractorSentences()) {
    for (char c : s) {
      EXPECT_FALSE(std::isdigit(static_cast<unsigned char>(c))) << s;
    }
  }
}

TEST(DemographicSwapTest, SwapsGenderedWords) {
  EXPECT_EQ(SwapWords("He said his wife saw her; she is a woman. MALE.",
                      SexWordSwaps()),
            "She said her wife saw his; he is a man. FEMALE.");
  EXPECT_EQ(
      SwapWords("A Caucasian man and an Asian woman.", EthnicityWordSwaps()),
      "A Hispanic man and an African woman.");
}

TEST(DemographicSwapTest, ShiftsStatedAgesOnly) {
  EXPECT_EQ(ShiftAges("A 61-year-old man, aged 61, took 3 tests; 12 years "
                      "old at onset; page 61.",
                      2),
            "A 63-year-old man, aged 63, took 3 tests; 14 years old at "
            "onset; page 61.");
  EXPECT_EQ(ShiftAges("1-year-old", -3), "1-year-old");
  EXPECT_EQ(ShiftAges("2-year-old", -3), "1-year-old");
}

TEST(DemographicSwapTest, AgeShiftStaysInTheBandAndIsNeverZero) {
  EXPECT_EQ(AgeShift(0, 3), 1);
  // 2^32 = 1 (mod 3): magnitude 1 + (1 + 3) % 3 = 2, odd high word: minus.
  EXPECT_EQ(AgeShift((1ull << 32) + 3, 3), -2);
  EXPECT_EQ(AgeShift(12345, 0), 0);
  for (uint64_t draw = 0; draw < 50; ++draw) {
    const int64_t shift = AgeShift(draw * 0x9E3779B97F4A7C15ull, 3);
    EXPECT_NE(shift, 0);
    EXPECT_LE(std::abs(shift), 3);
  }
}

}  // namespace
}  // namespace clinrl::envs
