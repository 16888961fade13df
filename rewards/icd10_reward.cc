// icd10: the agent's final diagnosis against the expected ICD-10 code(s).
// The exact code scores 1; a code in the same three-character category
// ("I21.4" for "I21.9") scores category_credit (default 0.5); anything else
// 0. The diagnosis is the last "DIAGNOSIS:" line (or params.answer_field); it
// may hold a code anywhere in the line or a condition name listed in
// params.aliases ({"acute myocardial infarction": "I21.9"}).
#include <string>
#include <vector>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

// Upper case without the dot: "i21.9" -> "I219". Empty when `text` is not an
// ICD-10 code: a letter, two digits (the category, "I21"; the third may be a
// letter in a few chapters), then up to four more characters.
std::string CanonicalCode(std::string_view text) {
  std::string code;
  for (char c : text) {
    if (c == '.') continue;
    if (!std::isalnum(static_cast<unsigned char>(c))) return "";
    code.push_back(
        static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  if (code.size() < 3 || code.size() > 7) return "";
  if (!std::isalpha(static_cast<unsigned char>(code[0])) ||
      !std::isdigit(static_cast<unsigned char>(code[1])) ||
      !std::isalnum(static_cast<unsigned char>(code[2]))) {
    return "";
  }
  const size_t dot = text.find('.');
  if (dot != std::string_view::npos && dot != 3) return "";
  return code;
}

// The first code-shaped word of a free-text diagnosis line.
std::string FirstCodeIn(const std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() &&
           !std::isalnum(static_cast<unsigned char>(text[i])))
      ++i;
    size_t j = i;
    while (
        j < text.size() &&
        (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '.')) {
      ++j;
    }
    std::string_view word(text.data() + i, j - i);
    while (!word.empty() && word.back() == '.') word.remove_suffix(1);
    const std::string code = CanonicalCode(word);
    if (!code.empty()) return code;
    i = j;
  }
  return "";
}

std::vector<std::string> ExpectedCodes(const json& params) {
  const wire::Fields f(params, "params");
  const json& e = f.Get("expected");
  std::vector<std::string> raw;
  if (e.is_string()) {
    raw.push_back(e.get<std::string>());
  } else if (e.is_array() && !e.empty()) {
    for (const json& x : e) {
      if (!x.is_string()) {
        throw BadRequest(fmt::format(
            "params.expected: expected ICD-10 code strings, got {} {}",
            x.type_name(), x.dump()));
      }
      raw.push_back(x.get<std::string>());
    }
  } else {
    throw BadRequest(fmt::format(
        "params.expected: expected an ICD-10 code (\"I21.9\") or a non-empty "
        "array of codes, got {} {}",
        e.type_name(), e.dump()));
  }
  std::vector<std::string> codes;
  for (const auto& r : raw) {
    const std::string code = CanonicalCode(Trim(r));
    if (code.empty()) {
      throw BadRequest(fmt::format(
          "params.expected: \"{}\" is not an ICD-10 code (letter, two digits, "
          "optional dot and up to four characters, e.g. \"I21.9\")",
          r));
    }
    codes.push_back(code);
  }
  return codes;
}

class Icd10Reward : public Reward {
 public:
  bool bounded_time(const json&) const override { return true; }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    ExpectedCodes(params);
    const double credit = f.Double("category_credit", 0.5);
    if (!(credit >= 0.0 && credit <= 1.0)) {
      throw BadRequest(fmt::format(
          "params.category_credit: expected a number in [0, 1], got {}",
          credit));
    }
    if (f.Has("aliases")) {
      for (const auto& [name, code] : f.Object("aliases").items()) {
        if (!code.is_string() ||
            CanonicalCode(code.get<std::string>()).empty()) {
          throw BadRequest(fmt::format(
              "params.aliases.{}: expected an ICD-10 code string, got {}", name,
              code.dump()));
        }
      }
    }
    f.String("tag", "DIAGNOSIS");
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    const wire::Fields f(params, "params");
    const auto expected = ExpectedCodes(params);
    const double credit = f.Double("category_credit", 0.5);
    ScoreResult r;
    const auto answer =
        ExtractAnswer(t, params, f.String("tag", "DIAGNOSIS"), false);
    if (!answer) {
      r.details = {{"answer", nullptr}, {"reason", "no diagnosis"}};
      return r;
    }
    std::string code = FirstCodeIn(*answer);
    if (code.empty() && f.Has("aliases")) {
      const std::string name = NormaliseAnswer(*answer);
      for (const auto& [alias, alias_code] : f.Object("aliases").items()) {
        if (NormaliseAnswer(alias) == name) {
          code = CanonicalCode(alias_code.get<std::string>());
          break;
        }
      }
    }
    r.details = {{"answer", *answer}, {"code", code}};
    if (code.empty()) {
      r.details["reason"] = "no ICD-10 code or known condition name";
      return r;
    }
    std::string match = "none";
    for (const auto& e : expected) {
      if (code == e) {
        r.score = 1.0;
        match = "exact";
        break;
      }
      if (code.compare(0, 3, e, 0, 3) == 0 && credit > r.score) {
        r.score = credit;
        match = "category";
      }
    }
    r.details["match"] = match;
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(icd10, [] { return std::make_unique<Icd10Reward>(); });

}  // namespace clinrl::rewards
