#include "rewards/rule_matcher.h"

#include <cctype>
#include <regex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/regex_cache.h"

namespace clinrl::rewards {
namespace {

constexpr const char* kBoundary = "|";

const std::unordered_set<std::string>& DefaultCues() {
  static const std::unordered_set<std::string> cues = {
      "no",      "not",     "never",    "without",     "denies",  "denied",
      "deny",    "denying", "negative", "neither",     "nor",     "none",
      "nothing", "cannot",  "cant",     "dont",        "doesnt",  "didnt",
      "isnt",    "arent",   "wasnt",    "werent",      "wont",    "shouldnt",
      "wouldnt", "avoid",   "avoiding", "unnecessary", "unneeded"};
  return cues;
}

// Words that end a negation's scope when scanning back from a mention.
const std::unordered_set<std::string>& ScopeEnds() {
  static const std::unordered_set<std::string> ends = {
      "but", "however", "although", "though", "except", "yet"};
  return ends;
}

// Lower-case words; sentence ends (. ! ? ; newline) become kBoundary tokens.
// Apostrophes vanish so "don't" is one word, "dont".
std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\'') continue;
    // UTF-8 right single quote (U+2019) is an apostrophe too.
    if (c == 0xE2 && i + 2 < text.size() &&
        static_cast<unsigned char>(text[i + 1]) == 0x80 &&
        static_cast<unsigned char>(text[i + 2]) == 0x99) {
      i += 2;
      continue;
    }
    if (std::isalnum(c) || c >= 0x80) {
      word.push_back(static_cast<char>(std::tolower(c)));
      continue;
    }
    flush();
    const bool sentence_end =
        c == '!' || c == '?' || c == ';' || c == '\n' ||
        (c == '.' && (i + 1 == text.size() ||
                      std::isspace(static_cast<unsigned char>(text[i + 1]))));
    // Never a leading boundary: a term of punctuation alone ("!!") has no
    // words, and ValidateMatch refuses it.
    if (sentence_end && !words.empty() && words.back() != kBoundary) {
      words.emplace_back(kBoundary);
    }
  }
  flush();
  return words;
}

// Terms recur in every response a rubric grades: split each once per thread.
const std::vector<std::string>& TermWords(const std::string& term) {
  constexpr size_t kMaxTerms = 16384;
  thread_local std::unordered_map<std::string, std::vector<std::string>> memo;
  auto it = memo.find(term);
  if (it != memo.end()) return it->second;
  if (memo.size() >= kMaxTerms) memo.clear();
  return memo.emplace(term, Words(term)).first->second;
}

struct IndexedText {
  std::vector<std::string> words;
  std::unordered_map<std::string, std::vector<size_t>> positions;
};

IndexedText Index(const std::string& text) {
  IndexedText t;
  t.words = Words(text);
  for (size_t i = 0; i < t.words.size(); ++i)
    t.positions[t.words[i]].push_back(i);
  return t;
}

enum class Polarity { kAffirmed, kNegated, kEither };

struct Mention {
  bool affirmed = false;
  bool negated = false;
};

class RuleEngine {
 public:
  explicit RuleEngine(const RuleMatcherOptions& options)
      : options_(options), window_(options.window) {
    for (const auto& c : options.negation_cues) custom_cues_.insert(c);
  }

  bool IsCue(const std::string& w) const {
    return custom_cues_.empty() ? DefaultCues().count(w) > 0
                                : custom_cues_.count(w) > 0;
  }

  bool Negated(const IndexedText& t, size_t at) const {
    for (size_t k = 1; k <= static_cast<size_t>(window_) && k <= at; ++k) {
      const std::string& w = t.words[at - k];
      if (w == kBoundary || ScopeEnds().count(w)) return false;
      if (IsCue(w)) return true;
    }
    return false;
  }

  // Where the phrase (already split into words) occurs, affirmed or negated.
  Mention Find(const IndexedText& t,
               const std::vector<std::string>& phrase) const {
    Mention m;
    if (phrase.empty()) return m;
    auto it = t.positions.find(phrase[0]);
    if (it == t.positions.end()) return m;
    for (size_t start : it->second) {
      if (start + phrase.size() > t.words.size()) continue;
      bool same = true;
      for (size_t k = 1; k < phrase.size() && same; ++k) {
        same = t.words[start + k] == phrase[k];
      }
      if (!same) continue;
      (Negated(t, start) ? m.negated : m.affirmed) = true;
      if (m.negated && m.affirmed) break;
    }
    return m;
  }

  // A term and its synonyms (criterion's first, then the shared ones).
  Mention FindTerm(const IndexedText& t, const std::string& term,
                   const nlohmann::json& synonyms) const {
    Mention m = Find(t, TermWords(term));
    for (const nlohmann::json* table : {&synonyms, &options_.synonyms}) {
      if (!table->is_object()) continue;
      auto it = table->find(term);
      if (it == table->end()) continue;
      for (const auto& alt : *it) {
        const Mention a = Find(t, TermWords(alt.get<std::string>()));
        m.affirmed |= a.affirmed;
        m.negated |= a.negated;
      }
    }
    return m;
  }

  void set_window(int64_t window) { window_ = window; }

 private:
  const RuleMatcherOptions& options_;
  int64_t window_;
  std::unordered_set<std::string> custom_cues_;
};

bool Counts(const Mention& m, Polarity p) {
  switch (p) {
    case Polarity::kAffirmed:
      return m.affirmed;
    case Polarity::kNegated:
      return m.negated;
    case Polarity::kEither:
      return m.affirmed || m.negated;
  }
  return false;
}

std::vector<std::string> TermList(const wire::Fields& f, const char* key) {
  std::vector<std::string> out;
  if (!f.Has(key)) return out;
  const auto& arr = f.Array(key);
  for (const auto& x : arr) {
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

Polarity ParsePolarity(const wire::Fields& f) {
  const std::string p = f.String("polarity", "affirmed");
  if (p == "affirmed") return Polarity::kAffirmed;
  if (p == "negated") return Polarity::kNegated;
  if (p == "either") return Polarity::kEither;
  throw BadRequest(fmt::format(
      "{}.polarity: expected one of affirmed, negated, either, got \"{}\"",
      f.path(), p));
}

void ValidateSynonyms(const nlohmann::json& synonyms, const std::string& path) {
  if (synonyms.is_null()) return;
  if (!synonyms.is_object()) {
    throw BadRequest(
        fmt::format("{}: expected an object {{term: [alternatives]}}, got {}",
                    path, synonyms.type_name()));
  }
  for (const auto& [term, alts] : synonyms.items()) {
    bool ok = alts.is_array();
    for (const auto& a : alts)
      ok = ok && a.is_string() && !a.get<std::string>().empty();
    if (!ok) {
      throw BadRequest(
          fmt::format("{}.{}: expected an array of non-empty strings, got {}",
                      path, term, alts.dump()));
    }
  }
}

}  // namespace

void ValidateRules(const std::vector<RubricCriterion>& criteria,
                   const RuleMatcherOptions& options, const std::string& path) {
  ValidateSynonyms(options.synonyms, "params.synonyms");
  if (options.window < 1) {
    throw BadRequest(
        fmt::format("params.negation_window: expected an integer >= 1, got {}",
                    options.window));
  }
  for (size_t i = 0; i < criteria.size(); ++i) {
    const std::string at = fmt::format("{}[{}].match", path, i);
    if (criteria[i].match.is_null()) {
      throw BadRequest(fmt::format(
          "{}: required by the rule matcher (declare any/all/none/regex), "
          "criterion \"{}\" has none",
          at, criteria[i].criterion));
    }
    ValidateMatch(criteria[i].match, options, at);
  }
}

void ValidateMatch(const nlohmann::json& match,
                   const RuleMatcherOptions& options, const std::string& path) {
  const wire::Fields f(match, path);
  const auto any = TermList(f, "any");
  const auto all = TermList(f, "all");
  const auto none = TermList(f, "none");
  const auto regex = TermList(f, "regex");
  if (any.empty() && all.empty() && none.empty() && regex.empty()) {
    throw BadRequest(fmt::format(
        "{}: expected at least one non-empty list among any, all, none, regex",
        path));
  }
  const std::pair<const char*, const std::vector<std::string>*> lists[] = {
      {"any", &any}, {"all", &all}, {"none", &none}};
  for (const auto& [key, terms] : lists) {
    for (const auto& term : *terms) {
      if (Words(term).empty()) {
        throw BadRequest(
            fmt::format("{}.{}: term \"{}\" has no letters or digits to match",
                        path, key, term));
      }
    }
  }
  for (const auto& r : regex) CachedRegex(r, path + ".regex");
  ParsePolarity(f);
  if (f.Has("synonyms"))
    ValidateSynonyms(f.Get("synonyms"), path + ".synonyms");
  if (f.Int("window", options.window) < 1) {
    throw BadRequest(fmt::format("{}.window: expected an integer >= 1, got {}",
                                 path, f.Get("window").dump()));
  }
}

std::vector<CriterionVerdict> MatchRules(
    const std::string& response, const std::vector<RubricCriterion>& criteria,
    const RuleMatcherOptions& options) {
  const IndexedText text = Index(response);
  RuleEngine engine(options);
  std::vector<CriterionVerdict> verdicts;
  verdicts.reserve(criteria.size());
  for (size_t i = 0; i < criteria.size(); ++i) {
    const wire::Fields f(criteria[i].match,
                         fmt::format("rubrics[{}].match", i));
    engine.set_window(f.Int("window", options.window));
    const Polarity polarity = ParsePolarity(f);
    const nlohmann::json synonyms =
        f.Has("synonyms") ? f.Get("synonyms") : nlohmann::json::object();
    CriterionVerdict v;
    v.met = true;
    std::string why;
    for (const auto& term : TermList(f, "all")) {
      if (!Counts(engine.FindTerm(text, term, synonyms), polarity)) {
        v.met = false;
        why = "missing \"" + term + "\"";
        break;
      }
    }
    const auto any = TermList(f, "any");
    if (v.met && !any.empty()) {
      bool found = false;
      for (const auto& term : any) {
        if (Counts(engine.FindTerm(text, term, synonyms), polarity)) {
          found = true;
          why = "found \"" + term + "\"";
          break;
        }
      }
      if (!found) {
        v.met = false;
        why = "none of the \"any\" terms";
      }
    }
    if (v.met) {
      for (const auto& term : TermList(f, "none")) {
        if (engine.FindTerm(text, term, synonyms).affirmed) {
          v.met = false;
          why = "mentions excluded \"" + term + "\"";
          break;
        }
      }
    }
    if (v.met) {
      for (const auto& r : TermList(f, "regex")) {
        if (!std::regex_search(response, CachedRegex(r, "regex"))) {
          v.met = false;
          why = "no match for /" + r + "/";
          break;
        }
      }
    }
    v.explanation = why.empty() ? (v.met ? "all rules hold" : "") : why;
    verdicts.push_back(std::move(v));
  }
  return verdicts;
}

}  // namespace clinrl::rewards
