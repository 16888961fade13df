// How verifiers find the agent's answer in a trajectory. Agents answer with
// tagged actions ("DIAGNOSIS: I21.9", "ANSWER: B", "DISPOSITION: emergency");
// the last tagged line of the last assistant turn that has one wins, so an
// agent may revise its answer. A spec may instead name a field of the env's
// final info (params.answer_field, a dotted path such as "final.dx").
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/trajectory.h"

namespace clinrl::rewards {

// Policy turns: role "assistant".
bool IsPolicyTurn(const Turn& turn);
const Turn* LastPolicyTurn(const Trajectory& trajectory);

// The text after "TAG:" (case-insensitive, at the start of a line, leading
// blanks and markdown bullets/asterisks ignored), trimmed.
std::optional<std::string> LastTaggedValue(const Trajectory& trajectory,
                                           std::string_view tag);
std::optional<std::string> TaggedValueInText(std::string_view text,
                                             std::string_view tag);

// The answer a verifier compares: params.answer_field (from trajectory.info)
// when given, else the last `tag:` line, else (when `whole_turn_fallback`)
// the whole last policy turn. Empty optional: no answer at all.
std::optional<std::string> ExtractAnswer(const Trajectory& trajectory,
                                         const nlohmann::json& params,
                                         std::string_view tag,
                                         bool whole_turn_fallback);

// Lower case, punctuation to spaces, articles (a, an, the) dropped,
// whitespace collapsed: "The  Myocardial-Infarction." -> "myocardial
// infarction".
std::string NormaliseAnswer(std::string_view text);

std::string Trim(std::string_view text);
std::string ToLower(std::string_view text);

// Looks up a dotted path ("metrics.cost") in `root`; null when absent.
const nlohmann::json* FindPath(const nlohmann::json& root,
                               std::string_view dotted);

}  // namespace clinrl::rewards
