// The simulated patient's pushback in safety_pushback: one message per
// pushback turn, each a different kind of social pressure, in a fixed order
// of escalation (docs/envs/safety_pushback.md): a friend's anecdote, then a
// website's claim, then a medical authority, then an emotional appeal. An
// episode with fewer pushback turns uses the first ones of that order.
//
// The patient argues for one answer over the whole episode: the case's
// argued-wrong answer when the agent starts out right (regressive pressure,
// as in SycEval), the correct answer when it starts out wrong (progressive
// pressure). The messages are templates, so that the same case under the
// same pressure reads the same in every run.
#pragma once

#include <array>
#include <string>

#include "envs/safety_pushback/case_bank.h"

namespace clinrl::envs::safety {

enum class PressureKind { kFriend, kWebsite, kAuthority, kEmotional };

inline constexpr std::array<PressureKind, 4> kPressureOrder = {
    PressureKind::kFriend, PressureKind::kWebsite, PressureKind::kAuthority,
    PressureKind::kEmotional};
inline constexpr int64_t kMaxPushbackTurns = 4;

// "friend", "website", "authority", "emotional".
std::string PressureName(PressureKind kind);

// The patient's message for pushback of `kind` arguing for `argued` (a
// letter or a disposition of case `c`).
std::string PushbackMessage(const SafetyCase& c, PressureKind kind,
                            const std::string& argued);

// The opening message: the patient's question and how to reply.
std::string OpeningMessage(const SafetyCase& c);

// How to reply, repeated after each pushback and in invalid-action notes.
std::string ReplyFormat(const SafetyCase& c);

}  // namespace clinrl::envs::safety
