// Reading the agent's reply: the tag in any case and decoration, the answer
// with explanation around it, and replies that name no valid choice.
#include "envs/safety_pushback/reply_parser.h"

#include <gtest/gtest.h>

namespace clinrl::envs::safety {
namespace {

// Three options, A to C, as pb-nosebleed has.
const SafetyCase& Nosebleed() {
  return CaseBank::Global().ById("pb-nosebleed");
}
const SafetyCase& ChestPain() {
  return CaseBank::Global().ById("rf-chest-pain-arm");
}

std::string AnswerOf(const std::string& reply, const SafetyCase& c) {
  const ParsedReply parsed = ParseReply(reply, c);
  return parsed.answer ? *parsed.answer : "invalid: " + parsed.error;
}

TEST(SafetyPushbackReply, LetterInAnyCaseAndDecoration) {
  EXPECT_EQ(AnswerOf("ANSWER: A", Nosebleed()), "A");
  EXPECT_EQ(AnswerOf("answer: b", Nosebleed()), "B");
  EXPECT_EQ(AnswerOf("Answer:c", Nosebleed()), "C");
  EXPECT_EQ(AnswerOf("  **Answer:**  (c) lie flat", Nosebleed()), "C");
  EXPECT_EQ(AnswerOf("- ANSWER : [A]", Nosebleed()), "A");
  EXPECT_EQ(AnswerOf("\tANSWER:   B.  \r", Nosebleed()), "B");
}

TEST(SafetyPushbackReply, ExplanationAroundTheAnswerLineIsAllowed) {
  EXPECT_EQ(AnswerOf("I understand your worry.\nANSWER: A) Sit up and lean "
                     "forward\nTilting back lets blood run down the throat.",
                     Nosebleed()),
            "A");
  // A revised answer: the last tagged line counts.
  EXPECT_EQ(AnswerOf("ANSWER: B\nOn reflection:\nANSWER: A", Nosebleed()), "A");
}

TEST(SafetyPushbackReply, RepliesWithoutAValidChoiceAreInvalid) {
  EXPECT_EQ(AnswerOf("The answer is A.", Nosebleed()),
            "invalid: no line starting with 'ANSWER:'");
  EXPECT_EQ(AnswerOf("ANSWER: D", Nosebleed()),
            "invalid: 'ANSWER: D' names none of: A, B, C");
  EXPECT_EQ(AnswerOf("ANSWER: Both", Nosebleed()),
            "invalid: 'ANSWER: Both' names none of: A, B, C");
  EXPECT_EQ(AnswerOf("ANSWER:", Nosebleed()),
            "invalid: 'ANSWER: ' names none of: A, B, C");
  EXPECT_EQ(AnswerOf("ANSWERS: A", Nosebleed()),
            "invalid: no line starting with 'ANSWER:'");
  EXPECT_EQ(AnswerOf("DISPOSITION: emergency", Nosebleed()),
            "invalid: this case takes 'ANSWER:', not 'DISPOSITION:'");
  EXPECT_EQ(AnswerOf("", Nosebleed()),
            "invalid: no line starting with 'ANSWER:'");
}

TEST(SafetyPushbackReply, DispositionsOfARedFlagCase) {
  EXPECT_EQ(AnswerOf("DISPOSITION: emergency", ChestPain()), "emergency");
  EXPECT_EQ(AnswerOf("Please go now.\ndisposition: Emergency - call 999",
                     ChestPain()),
            "emergency");
  EXPECT_EQ(AnswerOf("DISPOSITION: self care", ChestPain()), "self_care");
  EXPECT_EQ(AnswerOf("DISPOSITION: Self-Care", ChestPain()), "self_care");
  EXPECT_EQ(AnswerOf("DISPOSITION: selfcare", ChestPain()), "self_care");
  EXPECT_EQ(AnswerOf("**Disposition:** urgent", ChestPain()), "urgent");
  EXPECT_EQ(AnswerOf("DISPOSITION: routine.", ChestPain()), "routine");
}

TEST(SafetyPushbackReply, InvalidDispositions) {
  EXPECT_EQ(AnswerOf("DISPOSITION: urgently", ChestPain()),
            "invalid: 'DISPOSITION: urgently' names none of: emergency, "
            "urgent, routine, self_care");
  EXPECT_EQ(AnswerOf("DISPOSITION: ER", ChestPain()),
            "invalid: 'DISPOSITION: ER' names none of: emergency, urgent, "
            "routine, self_care");
  EXPECT_EQ(AnswerOf("ANSWER: A", ChestPain()),
            "invalid: this case takes 'DISPOSITION:', not 'ANSWER:'");
}

}  // namespace
}  // namespace clinrl::envs::safety
