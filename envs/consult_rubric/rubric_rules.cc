#include "envs/consult_rubric/rubric_rules.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::envs::consult {
namespace {

using nlohmann::json;

// A sentence end, kept as a token so that negation never crosses it.
constexpr const char* kBoundary = "|";
constexpr int64_t kDefaultWindow = 5;

bool IsNegationCue(const std::string& word) {
  static const std::unordered_set<std::string> cues = {
      "no",      "not",     "never",    "without",     "denies",  "denied",
      "deny",    "denying", "negative", "neither",     "nor",     "none",
      "nothing", "cannot",  "cant",     "dont",        "doesnt",  "didnt",
      "isnt",    "arent",   "wasnt",    "werent",      "wont",    "shouldnt",
      "wouldnt", "avoid",   "avoiding", "unnecessary", "unneeded"};
  return cues.count(word) > 0;
}

// Words that close a negation's scope when scanning back from a mention.
bool EndsScope(const std::string& word) {
  static const std::unordered_set<std::string> ends = {
      "but", "however", "although", "though", "except", "yet"};
  return ends.count(word) > 0;
}

bool IsRightQuote(const std::string& text, size_t i) {
  return static_cast<unsigned char>(text[i]) == 0xE2 && i + 2 < text.size() &&
         static_cast<unsigned char>(text[i + 1]) == 0x80 &&
         static_cast<unsigned char>(text[i + 2]) == 0x99;
}

bool EndsSentence(const std::string& text, size_t i) {
  const char c = text[i];
  if (c == '!' || c == '?' || c == ';' || c == '\n') return true;
  return c == '.' && (i + 1 == text.size() ||
                      std::isspace(static_cast<unsigned char>(text[i + 1])));
}

// Lower-case words with apostrophes dropped ("don't" -> "dont"); bytes of
// multi-byte characters count as letters; sentence ends become kBoundary.
std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\'') continue;
    if (IsRightQuote(text, i)) {
      i += 2;
      continue;
    }
    if (std::isalnum(c) || c >= 0x80) {
      word.push_back(static_cast<char>(std::tolower(c)));
      continue;
    }
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
    if (EndsSentence(text, i) && !words.empty() && words.back() != kBoundary) {
      words.emplace_back(kBoundary);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

struct Mention {
  bool affirmed = false;
  bool negated = false;
};

class ResponseText {
 public:
  explicit ResponseText(const std::string& text) : words_(Words(text)) {}

  // Every occurrence of `term`, sorted into affirmed and negated ones.
  Mention Find(const std::string& term, int64_t window) const {
    const std::vector<std::string> phrase = Words(term);
    Mention m;
    if (phrase.empty() || phrase.size() > words_.size()) return m;
    for (size_t start = 0; start + phrase.size() <= words_.size(); ++start) {
      if (!std::equal(phrase.begin(), phrase.end(), words_.begin() + start)) {
        continue;
      }
      (Negated(start, window) ? m.negated : m.affirmed) = true;
    }
    return m;
  }

 private:
  // NegEx-style: a cue within `window` words before, in the same sentence,
  // with no scope-ending word in between.
  bool Negated(size_t at, int64_t window) const {
    for (size_t k = 1; k <= static_cast<size_t>(window) && k <= at; ++k) {
      const std::string& w = words_[at - k];
      if (w == kBoundary || EndsScope(w)) return false;
      if (IsNegationCue(w)) return true;
    }
    return false;
  }

  std::vector<std::string> words_;
};

enum class Polarity { kAffirmed, kNegated, kEither };

Polarity ParsePolarity(const wire::Fields& f) {
  const std::string p = f.String("polarity", "affirmed");
  if (p == "affirmed") return Polarity::kAffirmed;
  if (p == "negated") return Polarity::kNegated;
  if (p == "either") return Polarity::kEither;
  throw BadRequest(fmt::format(
      "{}.polarity: expected one of affirmed, negated, either, got \"{}\"",
      f.path(), p));
}

bool Counts(const Mention& m, Polarity p) {
  if (p == Polarity::kAffirmed) return m.affirmed;
  if (p == Polarity::kNegated) return m.negated;
  return m.affirmed || m.negated;
}

std::vector<std::string> TermList(const wire::Fields& f, const char* key) {
  std::vector<std::string> out;
  if (!f.Has(key)) return out;
  for (const auto& x : f.Array(key)) {
    if (!x.is_string() || x.get<std::string>().empty()) {
      throw BadRequest(fmt::format(
          "{}.{}: expected an array of non-empty strings, got an element {} "
          "{}",
          f.path(), key, x.type_name(), x.dump()));
    }
    out.push_back(x.get<std::string>());
  }
  return out;
}

// Compiling a pattern costs far more than matching it, and the same rubric
// grades many replies: each thread keeps what it compiled (bounded).
const std::regex& CompiledRegex(const std::string& pattern,
                                const std::string& path) {
  constexpr size_t kMaxPatterns = 1024;
  thread_local std::unordered_map<std::string, std::regex> cache;
  auto it = cache.find(pattern);
  if (it != cache.end()) return it->second;
  if (cache.size() >= kMaxPatterns) cache.clear();
  try {
    return cache
        .emplace(pattern, std::regex(pattern, std::regex::ECMAScript |
                                                  std::regex::icase))
        .first->second;
  } catch (const std::regex_error& e) {
    throw BadRequest(fmt::format("{}: pattern /{}/ does not compile: {}", path,
                                 pattern, e.what()));
  }
}

void ValidateSynonyms(const json& synonyms, const std::string& path) {
  if (!synonyms.is_object()) {
    throw BadRequest(
        fmt::format("{}: expected an object {{term: [alternatives]}}, got {}",
                    path, synonyms.type_name()));
  }
  for (const auto& [term, alternatives] : synonyms.items()) {
    bool ok = alternatives.is_array();
    for (const auto& a : alternatives) {
      ok = ok && a.is_string() && !a.get<std::string>().empty();
    }
    if (!ok) {
      throw BadRequest(
          fmt::format("{}.{}: expected an array of non-empty strings, got {}",
                      path, term, alternatives.dump()));
    }
  }
}

// A term and the criterion's synonyms for it, mentions merged.
Mention FindTerm(const ResponseText& text, const std::string& term,
                 const json& synonyms, int64_t window) {
  Mention m = text.Find(term, window);
  auto it = synonyms.find(term);
  if (it == synonyms.end()) return m;
  for (const auto& alternative : *it) {
    const Mention a = text.Find(alternative.get<std::string>(), window);
    m.affirmed |= a.affirmed;
    m.negated |= a.negated;
  }
  return m;
}

bool Meets(const std::string& response, const ResponseText& text,
           const json& match, const std::string& path) {
  const wire::Fields f(match, path);
  const int64_t window = f.Int("window", kDefaultWindow);
  const Polarity polarity = ParsePolarity(f);
  const json synonyms = f.Has("synonyms") ? f.Get("synonyms") : json::object();
  auto counts = [&](const std::string& term) {
    return Counts(FindTerm(text, term, synonyms, window), polarity);
  };
  const auto all = TermList(f, "all");
  if (!std::all_of(all.begin(), all.end(), counts)) return false;
  const auto any = TermList(f, "any");
  if (!any.empty() && std::none_of(any.begin(), any.end(), counts)) {
    return false;
  }
  // "none" excludes affirmed mentions whatever the polarity asked of the rest.
  for (const auto& term : TermList(f, "none")) {
    if (FindTerm(text, term, synonyms, window).affirmed) return false;
  }
  for (const auto& pattern : TermList(f, "regex")) {
    if (!std::regex_search(response, CompiledRegex(pattern, path + ".regex"))) {
      return false;
    }
  }
  return true;
}

}  // namespace

void ValidateMatch(const json& match, const std::string& path) {
  const wire::Fields f(match, path);
  bool any_list = false;
  for (const char* key : {"any", "all", "none", "regex"}) {
    const auto terms = TermList(f, key);
    any_list |= !terms.empty();
    for (const auto& term : terms) {
      if (std::string(key) == "regex") {
        CompiledRegex(term, path + ".regex");
      } else if (Words(term).empty()) {
        throw BadRequest(
            fmt::format("{}.{}: term \"{}\" has no letters or digits to match",
                        path, key, term));
      }
    }
  }
  if (!any_list) {
    throw BadRequest(fmt::format(
        "{}: expected at least one non-empty list among any, all, none, regex",
        path));
  }
  ParsePolarity(f);
  if (f.Has("synonyms"))
    ValidateSynonyms(f.Get("synonyms"), path + ".synonyms");
  if (f.Int("window", kDefaultWindow) < 1) {
    throw BadRequest(fmt::format("{}.window: expected an integer >= 1, got {}",
                                 path, f.Get("window").dump()));
  }
}

std::vector<bool> MatchCriteria(const std::string& response,
                                const std::vector<RubricCriterion>& criteria) {
  const ResponseText text(response);
  std::vector<bool> met;
  met.reserve(criteria.size());
  for (size_t i = 0; i < criteria.size(); ++i) {
    met.push_back(Meets(response, text, criteria[i].match,
                        fmt::format("rubrics[{}].match", i)));
  }
  return met;
}

RubricScore ScoreRubric(const std::vector<RubricCriterion>& criteria,
                        const std::vector<bool>& met) {
  CLINRL_CHECK(criteria.size() == met.size(),
               "ScoreRubric: {} criteria but {} verdicts", criteria.size(),
               met.size());
  RubricScore s;
  std::map<std::string, std::pair<double, double>> by_tag;
  for (size_t i = 0; i < criteria.size(); ++i) {
    const double points = criteria[i].points;
    if (points > 0) s.possible += points;
    if (met[i]) s.achieved += points;
    for (const auto& tag : criteria[i].tags) {
      auto& [achieved, possible] = by_tag[tag];
      if (points > 0) possible += points;
      if (met[i]) achieved += points;
    }
  }
  CLINRL_CHECK(s.possible > 0, "ScoreRubric: no positive points");
  s.raw = s.achieved / s.possible;
  s.clipped = std::clamp(s.raw, 0.0, 1.0);
  for (const auto& [tag, points] : by_tag) {
    if (points.second > 0) s.tags[tag] = points.first / points.second;
  }
  return s;
}

}  // namespace clinrl::envs::consult
