// Compiled std::regex objects by pattern. Specs arrive with every trajectory,
// and compiling a pattern costs far more than matching it once, so each
// thread keeps the patterns it has seen (bounded, cleared when full).
//
// Part of clinrl_rubric_scoring (rewards/CMakeLists.txt), which the
// consult_rubric env links too: it may include only core/ and third-party
// headers (docs/design.md, "Exception: `envs/` uses the rubric scoring").
#pragma once

#include <regex>
#include <string>

namespace clinrl::rewards {

// ECMAScript, case-insensitive. Throws BadRequest naming `path` and the
// pattern when it does not compile.
const std::regex& CachedRegex(const std::string& pattern,
                              const std::string& path);

}  // namespace clinrl::rewards
