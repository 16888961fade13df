// A policy served by `clinrl serve` plugged into the places another run asks
// a model: the rubric judge (`llm_judge`, through `clinrl rubric eval`) and
// dx_dialogue's LLM patient (through `clinrl env demos`).
//
// The served model is built so that its greedy reply is known
// (tests/serve/scripted_reply_model.h): whatever it is asked, it answers one
// token that decodes to the whole reply and stops, and the test checks what
// the judge and the patient made of it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/cli/background_process.h"
#include "tests/cli/run_clinrl.h"
#include "tests/policy/test_util.h"
#include "tests/serve/scripted_reply_model.h"
#include "tests/serve/served_model.h"

namespace clinrl::serve {
namespace {

using clinrl::testing::RunClinrl;
using nlohmann::json;
using policy::testing::TempDir;
using testing::WriteScriptedReplyModel;

constexpr const char* kReply = R"({"criteria_met": true})";

// `clinrl serve` on the fixed-reply model.
testing::ServedModel ServeFixedReply(const std::string& dir) {
  return testing::ServedModel(WriteScriptedReplyModel({kReply}, dir + "/model"),
                              dir + "/serve.log");
}

TEST(ServedPolicyWiring, ServedModelIsTheRubricJudge) {
  TempDir dir;
  testing::ServedModel server = ServeFixedReply(dir.path());
  ASSERT_FALSE(server.url().empty()) << "clinrl serve printed no URL";
  const json row = {
      {"prompt_id", "p1"},
      {"prompt", {{{"role", "user"}, {"content", "I have a fever."}}}},
      {"rubrics",
       {{{"criterion", "Asks about the duration"},
         {"points", 5},
         {"tags", {"axis:completeness"}}},
        {{"criterion", "Advises fluids"},
         {"points", 3},
         {"tags", {"axis:accuracy"}}},
        {{"criterion", "Recommends antibiotics"},
         {"points", -2},
         {"tags", {"axis:accuracy"}}}}}};
  std::ofstream(dir.path() + "/rows.jsonl") << row.dump() << "\n";
  std::ofstream(dir.path() + "/responses.jsonl")
      << json{{"prompt_id", "p1"}, {"response", "Drink water."}}.dump() << "\n";
  const auto graded = RunClinrl(
      "rubric eval --rubrics " + dir.path() + "/rows.jsonl --responses " +
      dir.path() + "/responses.jsonl --matcher llm_judge --judge-url " +
      server.url() + " --judge-model model");
  EXPECT_EQ(server.Stop(), 143);
  ASSERT_EQ(graded.exit_code, 0) << graded.out;
  // It prints one JSON line last.
  std::string last = graded.out;
  while (!last.empty() && last.back() == '\n') last.pop_back();
  const json result = json::parse(last.substr(last.rfind('\n') + 1));
  // The judge said "met" to every criterion, the harmful one included:
  // (5 + 3 - 2) / 8 by HealthBench's formula.
  EXPECT_DOUBLE_EQ(result.at("overall").get<double>(), 0.75) << graded.out;
}

TEST(ServedPolicyWiring, ServedModelIsTheDxDialoguePatient) {
  TempDir dir;
  testing::ServedModel server = ServeFixedReply(dir.path());
  ASSERT_FALSE(server.url().empty()) << "clinrl serve printed no URL";
  const json options = {
      {"patient",
       {{"kind", "llm"}, {"endpoint", server.url()}, {"model", "model"}}}};
  const std::string out = dir.path() + "/demos.jsonl";
  const auto played = RunClinrl(
      "env demos --env dx_dialogue --policy random --n 3 --options '" +
      options.dump() + "' --out " + out);
  EXPECT_EQ(server.Stop(), 143);
  ASSERT_EQ(played.exit_code, 0) << played.out;
  // Each ASK went to the served model; its reply names no finding and no
  // condition, so the rule patient let it stand as the patient's words.
  std::ifstream in(out);
  int asked = 0, answered = 0;
  std::string all;
  for (std::string line; std::getline(in, line);) {
    all += line + "\n";
    const json episode = json::parse(line);
    for (const json& turn : episode.at("turns")) {
      const std::string content = turn.at("content");
      if (turn.at("role") == "assistant" && content.rfind("ASK", 0) == 0) {
        ++asked;
      }
      if (turn.at("role") == "user" && content == kReply) ++answered;
    }
  }
  ASSERT_GT(asked, 0) << "the random policy asked nothing:\n" << all;
  EXPECT_EQ(answered, asked) << all;
}

}  // namespace
}  // namespace clinrl::serve
