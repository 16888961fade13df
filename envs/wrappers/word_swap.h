// Whole-word, case-preserving replacement, shared by the wrappers that swap
// one vocabulary for another (drug names, demographic words). A word is a
// maximal run of letters and digits, so "Lipitor's" and "(Lipitor)" match
// and "Lipitorx" does not. The replacement takes the source word's case:
// "LIPITOR" -> "ATORVASTATIN", "Lipitor" -> "Atorvastatin", "lipitor" ->
// "atorvastatin".
#pragma once

#include <map>
#include <string>

namespace clinrl::envs {

// `swaps` maps lower-case words to lower-case replacements; every word of
// `text` found in it is replaced once (no chains: a swap table may be a
// bijection that maps A to B and B to A).
std::string SwapWords(const std::string& text,
                      const std::map<std::string, std::string>& swaps);

// `replacement` in the case pattern of `source` (all upper, first upper, or
// as given).
std::string InCaseOf(const std::string& source, const std::string& replacement);

}  // namespace clinrl::envs
