// demographic_swap: the patient's demographic descriptors rewritten where
// the answer must not depend on them (a fairness probe): sex and gendered
// words swapped (man <-> woman, he <-> she, ...), stated ages moved by a
// few years within a band, ethnicity words swapped in pairs. The task data
// (info, the answer, the reward spec) stays the inner env's; only the text
// changes, so a policy that reads the text is measured, one that reads the
// task data is not. Limits (docs/envs/wrappers.md): "her" becomes "his"
// (its object use, "him", cannot be told apart without parsing); relatives
// ("mother", "husband") are left alone; an env whose answer does depend on
// sex or age (a sex-specific condition, an age cut-off in a score) should
// not be wrapped, since the text then contradicts the answer key.
// Options: seed (integer), sex (bool, default true), age_band (years,
// 0..10, default 3; 0 keeps ages), ethnicity (bool, default true).
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace clinrl::envs {

// The gendered words and their swaps, lower case.
const std::map<std::string, std::string>& SexWordSwaps();
// Ethnicity words swapped in pairs, lower case.
const std::map<std::string, std::string>& EthnicityWordSwaps();

// `text` with every stated age ("61-year-old", "61 years old", "aged 61",
// "age 61") moved by `shift` years (at least 1).
std::string ShiftAges(const std::string& text, int64_t shift);

// The age shift of a task: a non-zero value in [-band, band] from `draw`
// (0 when band is 0).
int64_t AgeShift(uint64_t draw, int64_t band);

}  // namespace clinrl::envs
