// FHIR date/dateTime/instant values as ranges of UTC seconds. A value of
// lower precision ("2023", "2023-11", "2023-11-13") stands for the whole
// period, which is what the search prefixes (eq, gt, le, ...) compare.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace clinrl::envs::ehr {

struct TimeRange {
  int64_t lo = 0;  // first second of the period (UTC)
  int64_t hi = 0;  // one past the last second
};

// Parses YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm].
// Returns nullopt for anything else (callers name the field in their error).
std::optional<TimeRange> ParseFhirTime(const std::string& text);

// "2023-11-13T10:15:00+00:00", the form MedAgentBench's task clock uses.
std::string FormatInstant(int64_t utc_seconds);
// "2023-11-13".
std::string FormatDate(int64_t utc_seconds);

// Whole years between a birth date and a moment (the age on that day).
int64_t AgeInYears(const std::string& birth_date, int64_t at_utc_seconds);

}  // namespace clinrl::envs::ehr
