#include "envs/dx_dialogue/knowledge_base.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::envs::dx {

extern const char kEmbeddedKnowledgeBase[];

namespace {

using nlohmann::json;

std::vector<std::string> Strings(const wire::Fields& f, const char* field) {
  std::vector<std::string> out;
  if (!f.Has(field)) return out;
  const json& a = f.Array(field);
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string()) {
      throw ConfigError(fmt::format("{}.{}[{}]: expected a string, got {}",
                                    f.path(), field, i, a[i].dump()));
    }
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

double Probability(const json& v, const std::string& path) {
  if (!v.is_number() || v.get<double>() < 0.0 || v.get<double>() > 1.0) {
    throw ConfigError(fmt::format(
        "{}: expected a probability in [0, 1], got {}", path, v.dump()));
  }
  return v.get<double>();
}

FindingKind ParseKind(const std::string& kind, const std::string& path) {
  if (kind == "symptom") return FindingKind::kSymptom;
  if (kind == "history") return FindingKind::kHistory;
  if (kind == "sign") return FindingKind::kSign;
  throw ConfigError(fmt::format(
      "{}: expected one of symptom, history, sign, got \"{}\"", path, kind));
}

int Lookup(int index, const std::string& what, const std::string& name,
           const std::string& path) {
  if (index < 0) {
    throw ConfigError(fmt::format("{}: unknown {} \"{}\"", path, what, name));
  }
  return index;
}

void ParseInto(KnowledgeBase& kb, const json& j) {
  const wire::Fields root(j, "knowledge_base");
  kb.version = root.String("version", "");
  if (root.Has("sources")) {
    for (const auto& [k, v] : root.Object("sources").items()) {
      kb.sources[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  std::map<FindingKind, double> leak = {{FindingKind::kSymptom, 0.03},
                                        {FindingKind::kHistory, 0.03},
                                        {FindingKind::kSign, 0.02}};
  for (const char* key : {"leak", "unknown_rate"}) {
    if (!root.Has(key)) continue;
    for (const auto& [k, v] : root.Object(key).items()) {
      const std::string path = fmt::format("knowledge_base.{}.{}", key, k);
      const FindingKind kind = ParseKind(k, path);
      const double p = Probability(v, path);
      if (std::string(key) == "leak") {
        leak[kind] = p;
      } else {
        kb.unknown_rate[static_cast<int>(kind)] = p;
      }
    }
  }

  const json& systems = root.Array("exam_systems");
  for (size_t i = 0; i < systems.size(); ++i) {
    const wire::Fields f(systems[i], fmt::format("exam_systems[{}]", i));
    ExamSystem s;
    s.name = f.String("name");
    s.synonyms = Strings(f, "synonyms");
    s.cost = f.Double("cost");
    const int id = static_cast<int>(kb.systems.size());
    kb.system_matcher.Add(s.name, id, "exam_systems");
    for (const auto& syn : s.synonyms) kb.system_matcher.Add(syn, id, f.path());
    kb.systems.push_back(std::move(s));
  }

  const json& findings = root.Array("findings");
  for (size_t i = 0; i < findings.size(); ++i) {
    const wire::Fields f(findings[i], fmt::format("findings[{}]", i));
    Finding x;
    x.name = f.String("name");
    x.kind = ParseKind(f.String("kind"), f.path() + ".kind");
    x.lay = f.String("lay", x.name);
    x.synonyms = Strings(f, "synonyms");
    const std::string sex = f.String("sex", "any");
    if (sex != "any" && sex != "female") {
      throw ConfigError(fmt::format(
          "{}.sex: expected \"female\" or \"any\", got \"{}\"", f.path(), sex));
    }
    x.female_only = sex == "female";
    const int id = static_cast<int>(kb.findings.size());
    if (x.kind == FindingKind::kSign) {
      const std::string system = f.String("system");
      x.system = Lookup(kb.SystemIndex(system), "exam system", system,
                        f.path() + ".system");
      kb.systems[x.system].signs.push_back(id);
    }
    kb.finding_matcher.Add(x.name, id, "findings");
    for (const auto& syn : x.synonyms) {
      kb.finding_matcher.Add(syn, id, f.path() + ".synonyms");
    }
    kb.findings.push_back(std::move(x));
  }

  const json& tests = root.Array("tests");
  for (size_t i = 0; i < tests.size(); ++i) {
    const wire::Fields f(tests[i], fmt::format("tests[{}]", i));
    MedicalTest t;
    t.name = f.String("name");
    t.synonyms = Strings(f, "synonyms");
    t.cost = f.Double("cost");
    t.results = Strings(f, "results");
    if (t.results.empty()) {
      throw ConfigError(fmt::format(
          "{}.results: expected at least one result (the first is the "
          "unremarkable one)",
          f.path()));
    }
    const int id = static_cast<int>(kb.tests.size());
    kb.test_matcher.Add(t.name, id, "tests");
    for (const auto& syn : t.synonyms) kb.test_matcher.Add(syn, id, f.path());
    kb.tests.push_back(std::move(t));
  }

  auto result_index = [&](int test, const std::string& result,
                          const std::string& path) {
    const auto& rs = kb.tests[test].results;
    for (size_t r = 0; r < rs.size(); ++r) {
      if (rs[r] == result) return static_cast<int>(r);
    }
    throw ConfigError(fmt::format("{}: unknown result \"{}\" of test \"{}\"",
                                  path, result, kb.tests[test].name));
  };

  if (root.Has("red_flags")) {
    const json& flags = root.Array("red_flags");
    for (size_t i = 0; i < flags.size(); ++i) {
      const wire::Fields f(flags[i], fmt::format("red_flags[{}]", i));
      RedFlagRule r;
      r.name = f.String("name");
      for (const char* key : {"all_findings", "any_findings"}) {
        for (const auto& name : Strings(f, key)) {
          const int id = Lookup(kb.FindingIndex(name), "finding", name,
                                fmt::format("{}.{}", f.path(), key));
          (std::string(key) == "all_findings" ? r.all_findings : r.any_findings)
              .push_back(id);
        }
      }
      if (f.Has("test")) {
        const wire::Fields t(f.Object("test"), f.path() + ".test");
        const std::string name = t.String("name");
        r.test = Lookup(kb.TestIndex(name), "test", name, t.path() + ".name");
        r.result =
            result_index(r.test, t.String("result"), t.path() + ".result");
      }
      if (r.all_findings.empty() && r.any_findings.empty() && r.test < 0) {
        throw ConfigError(fmt::format(
            "{}: expected all_findings, any_findings or test", f.path()));
      }
      kb.red_flags.push_back(std::move(r));
    }
  }

  // A red-flag finding never leaks into a condition that does not list it:
  // a sprained back does not come with stroke signs by chance, so a red
  // flag always belongs to the case's condition.
  std::vector<bool> red_flag_finding(kb.findings.size(), false);
  for (const RedFlagRule& r : kb.red_flags) {
    for (int f : r.all_findings) red_flag_finding[f] = true;
    for (int f : r.any_findings) red_flag_finding[f] = true;
  }

  const json& conditions = root.Array("conditions");
  for (size_t i = 0; i < conditions.size(); ++i) {
    const wire::Fields f(conditions[i], fmt::format("conditions[{}]", i));
    Condition c;
    c.name = f.String("name");
    c.icd10 = f.String("icd10");
    if (CanonicalIcd10(c.icd10).empty()) {
      throw ConfigError(fmt::format(
          "{}.icd10: \"{}\" is not an ICD-10 code (letter, two digits, "
          "optional dot and up to four characters)",
          f.path(), c.icd10));
    }
    c.specialty = f.String("specialty");
    c.aliases = Strings(f, "aliases");
    const json& age = f.Array("age");
    if (age.size() != 2 || !age[0].is_number_integer() ||
        !age[1].is_number_integer() || age[0].get<int>() < 0 ||
        age[0].get<int>() > age[1].get<int>()) {
      throw ConfigError(fmt::format(
          "{}.age: expected [min, max] whole years with min <= max, got {}",
          f.path(), age.dump()));
    }
    c.age_min = age[0].get<int>();
    c.age_max = age[1].get<int>();
    c.p_male = Probability(f.Get("male"), f.path() + ".male");
    c.disposition = f.String("disposition");
    if (c.disposition != "home" && c.disposition != "clinic" &&
        c.disposition != "emergency") {
      throw ConfigError(fmt::format(
          "{}.disposition: expected one of home, clinic, emergency, got "
          "\"{}\"",
          f.path(), c.disposition));
    }
    c.source = f.String("source");
    c.finding_p.resize(kb.findings.size());
    c.finding_listed.assign(kb.findings.size(), false);
    for (size_t k = 0; k < kb.findings.size(); ++k) {
      c.finding_p[k] = red_flag_finding[k] ? 0.0 : leak[kb.findings[k].kind];
    }
    for (const auto& [name, p] : f.Object("findings").items()) {
      const std::string path = fmt::format("{}.findings.{}", f.path(), name);
      const int id = Lookup(kb.FindingIndex(name), "finding", name, path);
      c.finding_p[id] = Probability(p, path);
      c.finding_listed[id] = true;
    }
    for (const auto& name : Strings(f, "chief_complaints")) {
      const std::string path = f.path() + ".chief_complaints";
      const int id = Lookup(kb.FindingIndex(name), "finding", name, path);
      if (!c.finding_listed[id] || !kb.findings[id].askable()) {
        throw ConfigError(fmt::format(
            "{}: \"{}\" must be a symptom or history item listed in the "
            "condition's findings",
            path, name));
      }
      c.chief_complaints.push_back(id);
    }
    if (c.chief_complaints.empty()) {
      throw ConfigError(
          fmt::format("{}.chief_complaints: expected at least one", f.path()));
    }
    c.test_p.resize(kb.tests.size());
    for (size_t t = 0; t < kb.tests.size(); ++t) {
      c.test_p[t].assign(kb.tests[t].results.size(), 0.0);
      c.test_p[t][0] = 1.0;
    }
    if (f.Has("tests")) {
      for (const auto& [name, dist] : f.Object("tests").items()) {
        const std::string path = fmt::format("{}.tests.{}", f.path(), name);
        const int t = Lookup(kb.TestIndex(name), "test", name, path);
        if (!dist.is_object()) {
          throw ConfigError(fmt::format(
              "{}: expected an object {{result: probability}}, got {}", path,
              dist.dump()));
        }
        std::vector<double> p(kb.tests[t].results.size(), 0.0);
        double total = 0.0;
        for (const auto& [result, prob] : dist.items()) {
          const std::string rpath = path + "." + result;
          const int r = result_index(t, result, rpath);
          p[r] = Probability(prob, rpath);
          total += p[r];
        }
        if (std::fabs(total - 1.0) > 1e-6) {
          throw ConfigError(fmt::format(
              "{}: result probabilities sum to {}, expected 1", path, total));
        }
        c.test_p[t] = std::move(p);
      }
    }
    const int id = static_cast<int>(kb.conditions.size());
    for (const auto& other : kb.conditions) {
      if (CanonicalIcd10(other.icd10) == CanonicalIcd10(c.icd10)) {
        throw ConfigError(fmt::format(
            "{}.icd10: \"{}\" is also the code of \"{}\"; expected one "
            "condition per code",
            f.path(), c.icd10, other.name));
      }
    }
    kb.condition_matcher.Add(c.name, id, "conditions");
    for (const auto& a : c.aliases) {
      kb.condition_matcher.Add(a, id, f.path() + ".aliases");
    }
    kb.conditions.push_back(std::move(c));
  }
  if (kb.conditions.empty()) {
    throw ConfigError("knowledge_base.conditions: expected at least one");
  }
}

}  // namespace

const char* FindingKindName(FindingKind kind) {
  switch (kind) {
    case FindingKind::kSymptom:
      return "symptom";
    case FindingKind::kHistory:
      return "history";
    case FindingKind::kSign:
      return "sign";
  }
  return "?";
}

std::string CanonicalIcd10(const std::string& text) {
  std::string code;
  size_t dot = std::string::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (text[i] == '.') {
      if (dot != std::string::npos) return "";
      dot = i;
      continue;
    }
    if (!std::isalnum(u)) return "";
    code.push_back(static_cast<char>(std::toupper(u)));
  }
  if (code.size() < 3 || code.size() > 7) return "";
  if (!std::isalpha(static_cast<unsigned char>(code[0])) ||
      !std::isdigit(static_cast<unsigned char>(code[1])) ||
      !std::isalnum(static_cast<unsigned char>(code[2]))) {
    return "";
  }
  if (dot != std::string::npos && dot != 3) return "";
  return code;
}

std::shared_ptr<const KnowledgeBase> KnowledgeBase::FromJson(const json& j) {
  auto kb = std::make_shared<KnowledgeBase>();
  ParseInto(*kb, j);
  return kb;
}

std::shared_ptr<const KnowledgeBase> KnowledgeBase::FromFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw ConfigError(fmt::format(
        "knowledge_base: cannot open \"{}\"; expected a readable JSON file",
        path));
  }
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) {
    throw ConfigError(
        fmt::format("knowledge_base: \"{}\" is not valid JSON", path));
  }
  return FromJson(j);
}

std::shared_ptr<const KnowledgeBase> KnowledgeBase::Default() {
  static std::once_flag once;
  static std::shared_ptr<const KnowledgeBase> kb;
  std::call_once(once,
                 [] { kb = FromJson(json::parse(kEmbeddedKnowledgeBase)); });
  return kb;
}

std::shared_ptr<const KnowledgeBase> KnowledgeBase::Shared(
    const std::string& path) {
  if (path.empty()) return Default();
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const KnowledgeBase>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(path);
  if (it != loaded.end()) return it->second;
  auto kb = FromFile(path);
  loaded.emplace(path, kb);
  return kb;
}

int KnowledgeBase::FindingIndex(const std::string& name) const {
  for (size_t i = 0; i < findings.size(); ++i) {
    if (findings[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int KnowledgeBase::TestIndex(const std::string& name) const {
  for (size_t i = 0; i < tests.size(); ++i) {
    if (tests[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int KnowledgeBase::SystemIndex(const std::string& name) const {
  for (size_t i = 0; i < systems.size(); ++i) {
    if (systems[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int KnowledgeBase::ConditionByCode(const std::string& code) const {
  const std::string canonical = CanonicalIcd10(code);
  if (canonical.empty()) return -1;
  for (size_t i = 0; i < conditions.size(); ++i) {
    if (CanonicalIcd10(conditions[i].icd10) == canonical) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

double KnowledgeBase::FindingProbability(int condition, int finding,
                                         bool male) const {
  if (male && findings[finding].female_only) return 0.0;
  return conditions[condition].finding_p[finding];
}

double KnowledgeBase::UnknownRate(int finding, bool male) const {
  if (male && findings[finding].female_only) return 0.0;
  return unknown_rate[static_cast<int>(findings[finding].kind)];
}

std::vector<int> KnowledgeBase::AskableFindings() const {
  std::vector<int> out;
  for (size_t i = 0; i < findings.size(); ++i) {
    if (findings[i].askable()) out.push_back(static_cast<int>(i));
  }
  return out;
}

}  // namespace clinrl::envs::dx
