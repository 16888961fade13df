// distractor: one irrelevant sentence inserted into the reset observation
// (MedFuzz-style: a detail a clinician would ignore, which should not move
// the answer). The sentence comes from clinrl's own bank of remarks that
// name no symptom, sign, condition, drug or number, and goes between two
// sentences of the first message the agent reads; which sentence and where
// are a pure function of (split, task, option seed).
// Option `seed` (integer, default 0): another draw of sentence and place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clinrl::envs {

const std::vector<std::string>& DistractorSentences();

// `text` split after each ". ", "? " or "! " (the punctuation stays with its
// sentence); the last piece runs to the end.
std::vector<std::string> SplitSentences(const std::string& text);

// `text` with DistractorSentences()[draw % bank size] inserted before
// sentence (draw >> 32) % (sentences + 1), i.e. anywhere from the start to
// the end.
std::string InsertDistractor(const std::string& text, uint64_t draw);

}  // namespace clinrl::envs
