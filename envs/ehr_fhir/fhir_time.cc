#include "envs/ehr_fhir/fhir_time.h"

#include <fmt/format.h>

#include <cctype>
#include <ctime>

namespace clinrl::envs::ehr {
namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil), so no call depends on the process time zone.
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool Digits(const std::string& s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int DaysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

std::optional<TimeRange> ParseFhirTime(const std::string& s) {
  int y = 0, mo = 1, d = 1, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, &y)) return std::nullopt;
  if (s.size() == 4) {
    return TimeRange{DaysFromCivil(y, 1, 1) * 86400,
                     DaysFromCivil(y + 1, 1, 1) * 86400};
  }
  if (s[4] != '-' || !Digits(s, 5, 2, &mo) || mo < 1 || mo > 12) {
    return std::nullopt;
  }
  if (s.size() == 7) {
    const int ny = mo == 12 ? y + 1 : y, nm = mo == 12 ? 1 : mo + 1;
    return TimeRange{DaysFromCivil(y, mo, 1) * 86400,
                     DaysFromCivil(ny, nm, 1) * 86400};
  }
  if (s[7] != '-' || !Digits(s, 8, 2, &d) || d < 1 || d > DaysInMonth(y, mo)) {
    return std::nullopt;
  }
  const int64_t day = DaysFromCivil(y, mo, d) * 86400;
  if (s.size() == 10) return TimeRange{day, day + 86400};
  if (s[10] != 'T' || !Digits(s, 11, 2, &h) || s.size() < 16 || s[13] != ':' ||
      !Digits(s, 14, 2, &mi) || h > 23 || mi > 59) {
    return std::nullopt;
  }
  size_t pos = 16;
  int64_t width = 60;
  if (pos < s.size() && s[pos] == ':') {
    if (!Digits(s, pos + 1, 2, &sec) || sec > 60) return std::nullopt;
    pos += 3;
    width = 1;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      const size_t start = pos;
      while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])))
        ++pos;
      if (pos == start) return std::nullopt;
    }
  }
  int64_t offset = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh = 0, om = 0;
      if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() ||
          s[pos + 3] != ':' || !Digits(s, pos + 4, 2, &om)) {
        return std::nullopt;
      }
      offset = (s[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
      pos += 6;
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t t = day + h * 3600 + mi * 60 + sec - offset;
  return TimeRange{t, t + width};
}

std::string FormatInstant(int64_t t) {
  const int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  const int64_t rem = t - days * 86400;
  // civil_from_days
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}+00:00", y, m, d,
                     rem / 3600, rem % 3600 / 60, rem % 60);
}

std::string FormatDate(int64_t t) { return FormatInstant(t).substr(0, 10); }

int64_t AgeInYears(const std::string& birth_date, int64_t at) {
  const std::string now = FormatDate(at);
  int by = 0, bm = 0, bd = 0, ny = 0, nm = 0, nd = 0;
  if (!Digits(birth_date, 0, 4, &by) || !Digits(birth_date, 5, 2, &bm) ||
      !Digits(birth_date, 8, 2, &bd)) {
    return -1;
  }
  Digits(now, 0, 4, &ny);
  Digits(now, 5, 2, &nm);
  Digits(now, 8, 2, &nd);
  int64_t age = ny - by;
  if (nm < bm || (nm == bm && nd < bd)) --age;
  return age;
}

}  // namespace clinrl::envs::ehr
