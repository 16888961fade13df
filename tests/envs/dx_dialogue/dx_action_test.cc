#include "envs/dx_dialogue/dx_action.h"

#include <gtest/gtest.h>

namespace clinrl::envs::dx {
namespace {

TEST(DxActionTest, ParsesTheGrammarForgivingly) {
  struct Case {
    const char* text;
    ActionType type;
    const char* argument;
  };
  const Case cases[] = {
      {"ASK: chest pain", ActionType::kAsk, "chest pain"},
      {"  ask:   any fever?  ", ActionType::kAsk, "any fever"},
      {"Ask - cough", ActionType::kAsk, "cough"},
      {"**EXAM:** lungs", ActionType::kExam, "lungs"},
      {"examine heart", ActionType::kExam, "heart"},
      {"TEST: chest x-ray", ActionType::kTest, "chest x-ray"},
      {"order: troponin", ActionType::kTest, "troponin"},
      {"DISPOSITION: emergency", ActionType::kDisposition, "emergency"},
      {"\n\nDIAGNOSIS: I21.9.\nbecause...", ActionType::kDiagnosis, "I21.9"},
      {"dx: pneumonia", ActionType::kDiagnosis, "pneumonia"},
      {"- Diagnose: migraine", ActionType::kDiagnosis, "migraine"},
  };
  for (const auto& c : cases) {
    const DxAction a = ParseAction(c.text);
    EXPECT_EQ(a.type, c.type) << c.text;
    EXPECT_EQ(a.argument, c.argument) << c.text;
  }
}

TEST(DxActionTest, RejectsWhatIsNotAnAction) {
  for (const char* text : {"", "   ", "hello doctor", "ASK:", "ASK: ?",
                           "DIAGNOSIS", "asking: fever", "\x01\x02\xff"}) {
    EXPECT_EQ(ParseAction(text).type, ActionType::kInvalid) << text;
  }
}

TEST(DxActionTest, CutsRunawayArguments) {
  const DxAction a = ParseAction("ASK: " + std::string(100000, 'x'));
  EXPECT_EQ(a.type, ActionType::kAsk);
  EXPECT_EQ(a.argument.size(), kMaxArgumentChars);
}

}  // namespace
}  // namespace clinrl::envs::dx
