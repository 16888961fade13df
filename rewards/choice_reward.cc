// choice: multiple choice. The answer's letter is the first standalone
// letter of `choices` in the tagged answer ("ANSWER: (B)", "ANSWER: B. 12 h");
// without a tagged line, the last policy turn must name exactly one distinct
// standalone capital letter of `choices`, otherwise the answer is ambiguous
// and scores 0. Params: expected ("B"), choices (default "ABCDE"), tag.
#include <set>
#include <string>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

// Standalone single letters (neighbours not letters or digits) found in
// `choices`, in order of appearance.
std::string StandaloneLetters(const std::string& text,
                              const std::string& choices, bool any_case) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (any_case)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (choices.find(c) == std::string::npos) continue;
    const bool left_ok =
        i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]));
    const bool right_ok =
        i + 1 == text.size() ||
        !std::isalnum(static_cast<unsigned char>(text[i + 1]));
    if (left_ok && right_ok) out.push_back(c);
  }
  return out;
}

class ChoiceReward : public Reward {
 public:
  bool bounded_time(const json&) const override { return true; }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    const std::string choices = Choices(f);
    const std::string expected = f.String("expected");
    if (expected.size() != 1 ||
        choices.find(static_cast<char>(std::toupper(
            static_cast<unsigned char>(expected[0])))) == std::string::npos) {
      throw BadRequest(fmt::format(
          "params.expected: expected one letter of \"{}\", got \"{}\"", choices,
          expected));
    }
    f.String("tag", "ANSWER");
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    const wire::Fields f(params, "params");
    const std::string choices = Choices(f);
    const char expected = static_cast<char>(
        std::toupper(static_cast<unsigned char>(f.String("expected")[0])));
    ScoreResult r;
    char picked = 0;
    std::string source;
    if (auto tagged =
            ExtractAnswer(t, params, f.String("tag", "ANSWER"), false)) {
      const std::string letters = StandaloneLetters(*tagged, choices, true);
      if (!letters.empty()) picked = letters[0];
      source = *tagged;
    } else if (const Turn* last = LastPolicyTurn(t)) {
      const std::string letters =
          StandaloneLetters(last->content, choices, false);
      const std::set<char> distinct(letters.begin(), letters.end());
      if (distinct.size() == 1) picked = *distinct.begin();
      if (distinct.size() > 1) r.details["reason"] = "ambiguous";
      source = "(last turn)";
    }
    r.details["answer"] = source;
    r.details["picked"] = picked ? std::string(1, picked) : "";
    r.details["expected"] = std::string(1, expected);
    r.score = picked == expected ? 1.0 : 0.0;
    return r;
  }

 private:
  static std::string Choices(const wire::Fields& f) {
    std::string choices = f.String("choices", "ABCDE");
    for (char& c : choices) {
      if (!std::isalpha(static_cast<unsigned char>(c))) {
        throw BadRequest(fmt::format(
            "params.choices: expected letters only, got \"{}\"", choices));
      }
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (choices.empty()) {
      throw BadRequest(
          "params.choices: expected at least one letter, got \"\"");
    }
    return choices;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(choice, [] { return std::make_unique<ChoiceReward>(); });

}  // namespace clinrl::rewards
