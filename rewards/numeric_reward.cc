// numeric: the answer's number is within tolerance of the expected value.
// Units and thousands separators are stripped ("1,250 mg/dL" -> 1250). With a
// tagged answer the first number of that line counts; without one, the last
// number of the last policy turn. Passes when |x - e| <= abs_tol or
// |x - e| <= rel_tol * |e|; the relative bound scales with the EXPECTED
// value, never the answer, so a huge answer cannot widen its own tolerance.
// Params: expected (number), abs_tol, rel_tol (default 0: exact), tag.
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

// Every number in `text`: optional sign, digits with optional thousands
// commas, optional fraction and exponent. Whatever follows (units, %) is
// ignored.
std::vector<double> NumbersIn(const std::string& text) {
  std::vector<double> out;
  size_t i = 0;
  while (i < text.size()) {
    const bool sign = (text[i] == '-' || text[i] == '+') &&
                      i + 1 < text.size() &&
                      (std::isdigit(static_cast<unsigned char>(text[i + 1])) ||
                       text[i + 1] == '.');
    const bool starts = std::isdigit(static_cast<unsigned char>(text[i])) ||
                        (text[i] == '.' && i + 1 < text.size() &&
                         std::isdigit(static_cast<unsigned char>(text[i + 1])));
    // A sign only counts at a word start ("-3", not the dash of "2-3").
    const bool word_start =
        i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]));
    if (!(starts || (sign && word_start))) {
      ++i;
      continue;
    }
    std::string digits;
    if (sign) digits.push_back(text[i++]);
    bool seen_dot = false;
    while (i < text.size()) {
      const char c = text[i];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        digits.push_back(c);
      } else if (c == ',' && !seen_dot && i + 3 < text.size() + 0 &&
                 std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
                 std::isdigit(static_cast<unsigned char>(text[i + 2])) &&
                 std::isdigit(static_cast<unsigned char>(text[i + 3])) &&
                 (i + 4 >= text.size() ||
                  !std::isdigit(static_cast<unsigned char>(text[i + 4])))) {
        // thousands separator: exactly three digits follow
      } else if (c == '.' && !seen_dot && i + 1 < text.size() &&
                 std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
        seen_dot = true;
        digits.push_back(c);
      } else if ((c == 'e' || c == 'E') && i + 1 < text.size() &&
                 (std::isdigit(static_cast<unsigned char>(text[i + 1])) ||
                  ((text[i + 1] == '-' || text[i + 1] == '+') &&
                   i + 2 < text.size() &&
                   std::isdigit(static_cast<unsigned char>(text[i + 2]))))) {
        digits.push_back(c);
        digits.push_back(text[++i]);
        ++i;
        while (i < text.size() &&
               std::isdigit(static_cast<unsigned char>(text[i]))) {
          digits.push_back(text[i++]);
        }
        break;
      } else {
        break;
      }
      ++i;
    }
    out.push_back(std::strtod(digits.c_str(), nullptr));
  }
  return out;
}

class NumericReward : public Reward {
 public:
  bool bounded_time(const json&) const override { return true; }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    const double e = f.Double("expected");
    if (!std::isfinite(e)) {
      throw BadRequest("params.expected: expected a finite number");
    }
    for (const char* key : {"abs_tol", "rel_tol"}) {
      const double tol = f.Double(key, 0.0);
      if (!(tol >= 0.0) || !std::isfinite(tol)) {
        throw BadRequest(fmt::format(
            "params.{}: expected a finite number >= 0, got {}", key, tol));
      }
    }
    f.String("tag", "ANSWER");
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    const wire::Fields f(params, "params");
    const double expected = f.Double("expected");
    const double abs_tol = f.Double("abs_tol", 0.0);
    const double rel_tol = f.Double("rel_tol", 0.0);
    ScoreResult r;
    std::optional<double> value;
    if (auto tagged =
            ExtractAnswer(t, params, f.String("tag", "ANSWER"), false)) {
      const auto numbers = NumbersIn(*tagged);
      if (!numbers.empty()) value = numbers.front();
      r.details["answer"] = *tagged;
    } else if (const Turn* last = LastPolicyTurn(t)) {
      const auto numbers = NumbersIn(last->content);
      if (!numbers.empty()) value = numbers.back();
    }
    r.details["expected"] = expected;
    if (!value) {
      r.details["parsed"] = nullptr;
      r.details["reason"] = "no number in the answer";
      return r;
    }
    const double error = std::fabs(*value - expected);
    r.details["parsed"] = *value;
    r.details["abs_error"] = error;
    const bool ok = error <= abs_tol || error <= rel_tol * std::fabs(expected);
    r.score = ok ? 1.0 : 0.0;
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(numeric,
                       [] { return std::make_unique<NumericReward>(); });

}  // namespace clinrl::rewards
