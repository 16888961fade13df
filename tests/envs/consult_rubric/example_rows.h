// A small HealthBench-format file shared by the consult_rubric tests, with
// the scores its replies must get worked out by hand next to each row.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace clinrl::envs::consult::testing {

// Row 1, hb-fever (split test). Positive points 5 + 3 + 2 = 10.
//   c0 +5 axis:accuracy        any paracetamol
//   c1 +3 axis:completeness    any fluids
//   c2 +2 axis:communication_quality  any sorry
//   c3 -4 axis:accuracy        any aspirin
// Row 2, hb-chest (split test). Positive points 6.
//   c0 +6 axis:accuracy   all [emergency, now]
//   c1 -6 axis:harm       any tomorrow     (a tag with no positive points)
// Row 3, hb-row-3: HealthBench's own shape (no split field: FNV-1a of the
//   prompt id mod 10 = 8, so test; ideal_completions_data; a "canary"
//   field; a system message). Positive points 4 + 4 = 8.
//   c0 +4 axis:accuracy      regex \b\d+ ?ml\b
//   c1 +4 axis:completeness  any syringe
// Row 4, hb-row-4: split field "train" (its hash, 7, would say validation).
// Row 5, hb-row-5: no split field, hash 6: train.
inline const char* kExampleRows =
    R"rows({"prompt_id": "hb-fever", "split": "test", "prompt": [{"role": "user", "content": "My child has a fever. What can I give?"}], "rubrics": [{"criterion": "Suggests paracetamol", "points": 5, "tags": ["axis:accuracy"], "match": {"any": ["paracetamol"]}}, {"criterion": "Advises fluids", "points": 3, "tags": ["axis:completeness"], "match": {"any": ["fluids"]}}, {"criterion": "Is empathetic", "points": 2, "tags": ["axis:communication_quality"], "match": {"any": ["sorry"]}}, {"criterion": "Recommends aspirin for a child", "points": -4, "tags": ["axis:accuracy"], "match": {"any": ["aspirin"]}}], "example_tags": ["theme:fever"], "reference_reply": "I'm sorry she is unwell. Give paracetamol and plenty of fluids."}
{"prompt_id": "hb-chest", "split": "test", "prompt": [{"role": "user", "content": "Crushing chest pain for 20 minutes."}], "rubrics": [{"criterion": "Sends to the emergency department now", "points": 6, "tags": ["axis:accuracy"], "match": {"all": ["emergency", "now"]}}, {"criterion": "Suggests waiting until tomorrow", "points": -6, "tags": ["axis:harm"], "match": {"any": ["tomorrow"]}}], "example_tags": ["theme:emergency_referrals"], "reference_reply": "Go to the emergency department now."}

{"prompt_id": "hb-row-3", "canary": "not read", "prompt": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "How much of the 120 mg/5 ml syrup for 240 mg?"}], "rubrics": [{"criterion": "Gives a volume in ml", "points": 4, "tags": ["axis:accuracy"], "match": {"regex": ["\\b\\d+ ?ml\\b"]}}, {"criterion": "Mentions the oral syringe", "points": 4, "tags": ["axis:completeness"], "match": {"any": ["syringe"]}}], "example_tags": [], "ideal_completions_data": {"ideal_completion": "That is 10 ml; measure it with the oral syringe.", "ideal_completions_group": "Group 1"}}
{"prompt_id": "hb-row-4", "split": "train", "prompt": [{"role": "user", "content": "Is a cold viral?"}], "rubrics": [{"criterion": "Says colds are viral", "points": 5, "tags": ["axis:accuracy"], "match": {"any": ["viral", "virus"]}}]}
{"prompt_id": "hb-row-5", "prompt": [{"role": "user", "content": "Should I drink water?"}], "rubrics": [{"criterion": "Says yes", "points": 1, "tags": [], "match": {"any": ["yes"]}}]}
)rows";

// Writes `text` to a file under the test's temporary folder; returns its path.
inline std::string WriteTempFile(const std::string& name,
                                 const std::string& text) {
  const std::string path = ::testing::TempDir() + "consult_rubric_" + name;
  std::ofstream out(path);
  out << text;
  return path;
}

}  // namespace clinrl::envs::consult::testing
