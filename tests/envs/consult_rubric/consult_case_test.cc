// Reading HealthBench-format rows: fields, reference replies, the split rule
// and errors that name the file, the line and the field.
#include "envs/consult_rubric/consult_case.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/envs/consult_rubric/example_rows.h"

namespace clinrl::envs::consult {
namespace {

using testing::kExampleRows;

std::vector<std::string> Ids(const std::vector<ConsultCase>& cases) {
  std::vector<std::string> ids;
  for (const auto& c : cases) ids.push_back(c.prompt_id);
  return ids;
}

// The message of the ConfigError that parsing `text` throws, or "" when none.
std::string ParseError(const std::string& text) {
  try {
    ParseConsultCases(text, "bad.jsonl", SplitBy::kFieldOrHash);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConsultCaseTest, ReadsHealthBenchRowsWithClinrlFields) {
  const ConsultCaseSet set =
      ParseConsultCases(kExampleRows, "rows.jsonl", SplitBy::kFieldOrHash);
  const auto& test = set.splits.at("test");
  ASSERT_EQ(Ids(test),
            (std::vector<std::string>{"hb-fever", "hb-chest", "hb-row-3"}));
  const ConsultCase& fever = test[0];
  ASSERT_EQ(fever.prompt.size(), 1u);
  EXPECT_EQ(fever.prompt[0].role, "user");
  ASSERT_EQ(fever.rubrics.size(), 4u);
  EXPECT_EQ(fever.rubrics[3].points, -4.0);
  EXPECT_EQ(fever.rubrics[3].tags, std::vector<std::string>{"axis:accuracy"});
  EXPECT_EQ(fever.example_tags, std::vector<std::string>{"theme:fever"});
  EXPECT_EQ(fever.reference_reply,
            "I'm sorry she is unwell. Give paracetamol and plenty of fluids.");
  EXPECT_EQ(fever.where, "rows.jsonl:1");
  EXPECT_EQ(fever.judged_criteria, 0u);
  // HealthBench's own shape: the system message is part of the prompt and
  // the reference comes from ideal_completions_data; the blank line 3 counts.
  const ConsultCase& row3 = test[2];
  EXPECT_EQ(row3.prompt[0].role, "system");
  EXPECT_EQ(row3.reference_reply,
            "That is 10 ml; measure it with the oral syringe.");
  EXPECT_EQ(row3.where, "rows.jsonl:4");
}

TEST(ConsultCaseTest, SplitsComeFromTheFieldElseFromTheHash) {
  // By hand (FNV-1a 64 of the prompt id, mod 10; 0-6 train, 7 validation,
  // 8-9 test): hb-fever 8, hb-chest 1, hb-row-3 8, hb-row-4 7, hb-row-5 6.
  EXPECT_EQ(HashSplit("hb-fever"), "test");
  EXPECT_EQ(HashSplit("hb-chest"), "train");
  EXPECT_EQ(HashSplit("hb-row-4"), "validation");
  EXPECT_EQ(HashSplit("hb-row-5"), "train");
  const ConsultCaseSet by_field =
      ParseConsultCases(kExampleRows, "rows.jsonl", SplitBy::kFieldOrHash);
  EXPECT_EQ(Ids(by_field.splits.at("train")),
            (std::vector<std::string>{"hb-row-4", "hb-row-5"}));
  EXPECT_TRUE(by_field.splits.at("validation").empty());
  const ConsultCaseSet by_hash =
      ParseConsultCases(kExampleRows, "rows.jsonl", SplitBy::kHash);
  EXPECT_EQ(Ids(by_hash.splits.at("train")),
            (std::vector<std::string>{"hb-chest", "hb-row-5"}));
  EXPECT_EQ(Ids(by_hash.splits.at("validation")),
            std::vector<std::string>{"hb-row-4"});
  EXPECT_EQ(Ids(by_hash.splits.at("test")),
            (std::vector<std::string>{"hb-fever", "hb-row-3"}));
}

TEST(ConsultCaseTest, BadRowsNameTheFileTheLineAndTheField) {
  const std::string good =
      R"({"prompt_id": "a", "prompt": [{"role": "user", "content": "hi"}], )"
      R"("rubrics": [{"criterion": "c", "points": 1, "match": {"any": ["x"]}}]})";
  EXPECT_EQ(ParseError(good + "\n" + good),
            "bad.jsonl:2: prompt_id: \"a\" repeats the row on line 1; prompt "
            "ids must be unique");
  EXPECT_EQ(ParseError("{not json"),
            "bad.jsonl:1: not valid JSON; expected one HealthBench-format row "
            "per line");
  EXPECT_EQ(ParseError(""),
            "bad.jsonl: no rows; expected HealthBench-format JSONL, one row "
            "per line");
  struct Case {
    std::string row;
    std::string starts_with;
  };
  const std::vector<Case> cases = {
      {R"({"prompt_id": "a", "rubrics": []})", "bad.jsonl:2: prompt: "},
      {R"({"prompt_id": "a", "prompt": [{"role": "user"}], "rubrics": []})",
       "bad.jsonl:2: prompt[0].content: "},
      {R"({"prompt_id": "a", "prompt": [{"role": "user", "content": "x"}], "rubrics": [{"criterion": "c", "points": "ten"}]})",
       "bad.jsonl:2: rubrics[0].points: expected"},
      {R"({"prompt_id": "a", "prompt": [{"role": "user", "content": "x"}], "rubrics": [{"criterion": "c", "points": -3, "match": {"any": ["x"]}}]})",
       "bad.jsonl:2: rubrics: expected at least one criterion with points > 0"},
      {R"({"prompt_id": "a", "prompt": [{"role": "user", "content": "x"}], "rubrics": [{"criterion": "c", "points": 1, "match": {"any": ["x"], "polarity": "sometimes"}}]})",
       "bad.jsonl:2: rubrics[0].match.polarity: expected one of affirmed"},
      {R"({"prompt_id": "a", "prompt": [{"role": "user", "content": "x"}], "rubrics": [{"criterion": "c", "points": 1, "match": {"regex": ["("]}}]})",
       "bad.jsonl:2: rubrics[0].match.regex: \"(\" is not a valid "
       "ECMAScript regular expression"},
      {R"({"prompt_id": "a", "prompt": [{"role": "user", "content": "x"}], "rubrics": [{"criterion": "c", "points": 1, "tags": ["axis:a", 3]}]})",
       "bad.jsonl:2: rubrics[0].tags[1]: expected a string"},
      {R"({"prompt_id": "a", "split": "dev", "prompt": [{"role": "user", "content": "x"}], "rubrics": [{"criterion": "c", "points": 1}]})",
       "bad.jsonl:2: split: expected one of train, validation, test"},
      {R"({"prompt_id": "a", "prompt": [{"role": "user", "content": "x"}], "rubrics": [{"criterion": "c", "points": 1}], "ideal_completions_data": {"ideal_completion": 5}})",
       "bad.jsonl:2: ideal_completions_data.ideal_completion: expected"},
      {"[1, 2]", "bad.jsonl:2: expected a JSON object"},
  };
  for (const auto& c : cases) {
    const std::string message = ParseError("\n" + c.row);
    EXPECT_EQ(message.rfind(c.starts_with, 0), 0u)
        << "row " << c.row << "\n  got: " << message;
  }
}

}  // namespace
}  // namespace clinrl::envs::consult
