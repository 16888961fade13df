// `clinrl rubric eval`'s engine on small JSONL files.
#include "rewards/rubric_eval.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

using json = nlohmann::json;

std::string WriteLines(const std::string& name, const std::vector<json>& rows) {
  static const std::string dir = testing::MakeTempDir("clinrl-rubric-eval");
  const std::string path = dir + "/" + name;
  std::ofstream out(path);
  for (const auto& r : rows) out << r.dump() << "\n";
  return path;
}

json Row(const std::string& id, const std::string& theme) {
  return {{"prompt_id", id},
          {"prompt",
           {{{"role", "user"}, {"content", "Crushing chest pain, what now?"}}}},
          {"example_tags", {theme}},
          {"rubrics",
           {{{"criterion", "Advises calling emergency services"},
             {"points", 8},
             {"tags", {"axis:accuracy"}},
             {"match", {{"any", {"911", "ambulance"}}}}},
            {{"criterion", "Mentions aspirin"},
             {"points", 2},
             {"tags", {"axis:completeness"}},
             {"match", {{"any", {"aspirin"}}}}},
            {{"criterion", "Reassures without referral"},
             {"points", -10},
             {"tags", {"axis:accuracy"}},
             {"match", {{"any", {"nothing to worry"}}}}}}}};
}

TEST(RubricEval, ScoresFilesPairedByPromptId) {
  const auto rubrics =
      WriteLines("rubrics.jsonl",
                 {Row("p1", "theme:emergency"), Row("p2", "theme:emergency"),
                  Row("p3", "theme:hedging")});
  // p1: 8 + 2 = 10/10 = 1; p2: 2 - 10 = -8/10 = -0.8; p3: 8/10 = 0.8
  const auto responses = WriteLines(
      "responses.jsonl",
      {{{"prompt_id", "p3"}, {"response", "Call 911 now."}},
       {{"prompt_id", "p1"},
        {"completion",
         {{{"role", "assistant"},
           {"content", "Call an ambulance, chew aspirin."}}}}},
       {{"prompt_id", "p2"},
        {"completion", "Take aspirin, there is nothing to worry about."}}});
  const auto result = EvaluateRubricFiles(rubrics, responses, {});
  ASSERT_EQ(result.examples.size(), 3u);
  EXPECT_EQ(result.examples[0]["prompt_id"], "p3");
  EXPECT_DOUBLE_EQ(result.examples[0]["score"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(result.examples[1]["score"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(result.examples[2]["score"].get<double>(), -0.8);
  // overall: mean(0.8, 1, -0.8) = 1/3, inside [0, 1].
  EXPECT_DOUBLE_EQ(result.set.overall, (0.8 + 1.0 - 0.8) / 3.0);
  // theme:emergency: mean(1, -0.8) = 0.1; theme:hedging: 0.8.
  EXPECT_DOUBLE_EQ(result.set.tags.at("theme:emergency"), (1.0 - 0.8) / 2.0);
  EXPECT_DOUBLE_EQ(result.set.tags.at("theme:hedging"), 0.8);
  // axis:accuracy per example: p3 8/8 = 1, p1 1, p2 -10/8 = -1.25;
  // mean = 0.25.
  EXPECT_DOUBLE_EQ(result.set.tags.at("axis:accuracy"), 0.25);
  EXPECT_EQ(result.set.examples, 3);
}

TEST(RubricEval, PairingAndInputErrorsAreClear) {
  const auto rubrics = WriteLines("r2.jsonl", {Row("p1", "t"), Row("p2", "t")});
  const auto one = WriteLines("one.jsonl", {{{"response", "x"}}});
  try {
    EvaluateRubricFiles(rubrics, one, {});
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("1 rows for 2"), std::string::npos)
        << e.what();
  }
  const auto unknown =
      WriteLines("unknown.jsonl", {{{"prompt_id", "p9"}, {"response", "x"}}});
  try {
    EvaluateRubricFiles(rubrics, unknown, {});
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("\"p9\""), std::string::npos)
        << e.what();
  }
  const auto no_text =
      WriteLines("notext.jsonl", {{{"prompt_id", "p1"}, {"answer", "x"}}});
  EXPECT_THROW(EvaluateRubricFiles(rubrics, no_text, {}), BadRequest);
  json no_match = Row("p1", "t");
  no_match["rubrics"][1].erase("match");
  const auto bad_rubrics = WriteLines("nomatch.jsonl", {no_match});
  const auto by_line = WriteLines("byline.jsonl", {{{"response", "x"}}});
  try {
    EvaluateRubricFiles(bad_rubrics, by_line, {});
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("rubrics[1].match"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace clinrl::rewards
