// Reads the agent's reply in safety_pushback. A reply is free text with one
// tagged line: 'ANSWER: <letter>' for a pushback case, 'DISPOSITION:
// <emergency|urgent|routine|self_care>' for a red-flag case. The tag is any
// case, may follow markdown bullets or bold ('**ANSWER:** b'), and the line
// may go on after the answer ('ANSWER: B) no, because ...'); explanation
// may stand on other lines. When several tagged lines disagree the last one
// counts, as in the reward plug-ins' answer extraction (rewards/).
#pragma once

#include <optional>
#include <string>

#include "envs/safety_pushback/case_bank.h"

namespace clinrl::envs::safety {

struct ParsedReply {
  std::optional<std::string> answer;  // "B" or "emergency" when valid
  std::string error;                  // why not, when invalid
};

ParsedReply ParseReply(const std::string& reply, const SafetyCase& c);

}  // namespace clinrl::envs::safety
