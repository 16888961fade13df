#include "envs/dx_dialogue/clinical_case.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>
#include <unordered_set>

#include "core/error.h"

namespace clinrl::envs::dx {

uint64_t MixSeed(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double UnitInterval(uint64_t word) {
  return static_cast<double>(word >> 11) * 0x1.0p-53;
}

namespace {

// std::mt19937_64's output is fixed by the standard; the distributions of
// <random> are not, so every draw goes through UnitInterval.
class CaseRng {
 public:
  explicit CaseRng(uint64_t seed) : engine_(MixSeed(seed)) {}
  double Uniform() { return UnitInterval(engine_()); }
  int Below(int n) {
    return static_cast<int>(Uniform() * static_cast<double>(n));
  }
  int Pick(const std::vector<double>& p) {
    const double u = Uniform();
    double acc = 0.0;
    for (size_t i = 0; i < p.size(); ++i) {
      acc += p[i];
      if (u < acc) return static_cast<int>(i);
    }
    for (size_t i = p.size(); i-- > 0;) {
      if (p[i] > 0) return static_cast<int>(i);
    }
    return 0;
  }

 private:
  std::mt19937_64 engine_;
};

VitalSigns MakeVitals(const KnowledgeBase& kb, const ClinicalCase& c,
                      CaseRng& rng) {
  auto has = [&](const char* name) {
    const int f = kb.FindingIndex(name);
    return f >= 0 && c.Has(f);
  };
  auto jitter = [&](int spread) { return rng.Below(2 * spread + 1) - spread; };
  VitalSigns v;
  v.temperature_c = has("raised temperature") ? 38.6 + 0.1 * jitter(4)
                                              : 36.8 + 0.1 * jitter(3);
  v.heart_rate = has("tachycardia") ? 116 + jitter(10) : 76 + jitter(10);
  if (has("hypotension")) {
    v.systolic = 84 + jitter(6);
    v.diastolic = 50 + jitter(4);
  } else if (has("high blood pressure")) {
    v.systolic = 176 + jitter(12);
    v.diastolic = 100 + jitter(6);
  } else {
    v.systolic = 122 + jitter(10);
    v.diastolic = 76 + jitter(6);
  }
  v.respiratory_rate = has("tachypnea") ? 26 + jitter(3) : 14 + jitter(2);
  v.spo2 = has("hypoxia") ? 88 + jitter(2) : 97 + jitter(1);
  return v;
}

}  // namespace

uint64_t ClinicalCase::Fingerprint() const {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ULL;
    }
  };
  mix(static_cast<uint64_t>(condition));
  mix(static_cast<uint64_t>(age));
  mix(male ? 1 : 0);
  mix(static_cast<uint64_t>(chief_complaint));
  for (auto s : findings) mix(static_cast<uint64_t>(s));
  for (int r : test_results) mix(static_cast<uint64_t>(r));
  return h;
}

std::vector<int> FiredRedFlags(const KnowledgeBase& kb,
                               const std::vector<bool>& present,
                               const std::vector<int>& test_results) {
  std::vector<int> fired;
  for (size_t i = 0; i < kb.red_flags.size(); ++i) {
    const RedFlagRule& r = kb.red_flags[i];
    bool ok = true;
    for (int f : r.all_findings) ok = ok && present[f];
    if (!r.any_findings.empty()) {
      bool any = false;
      for (int f : r.any_findings) any = any || present[f];
      ok = ok && any;
    }
    if (r.test >= 0) ok = ok && test_results[r.test] == r.result;
    if (ok) fired.push_back(static_cast<int>(i));
  }
  return fired;
}

std::vector<int> MustAskFindings(const KnowledgeBase& kb, int condition,
                                 int chief_complaint) {
  std::vector<int> rivals;
  for (size_t c = 0; c < kb.conditions.size(); ++c) {
    if (static_cast<int>(c) == condition) continue;
    const auto& cc = kb.conditions[c].chief_complaints;
    if (std::find(cc.begin(), cc.end(), chief_complaint) != cc.end()) {
      rivals.push_back(static_cast<int>(c));
    }
  }
  const Condition& self = kb.conditions[condition];
  std::vector<std::pair<double, int>> scored;
  for (int f : kb.AskableFindings()) {
    if (f == chief_complaint || kb.findings[f].female_only) continue;
    double score = 0.0;
    for (int r : rivals) {
      score += std::fabs(self.finding_p[f] - kb.conditions[r].finding_p[f]);
    }
    // Without rivals, the likeliest findings are what a history must cover.
    score = rivals.empty() ? self.finding_p[f]
                           : score / static_cast<double>(rivals.size());
    if (self.finding_listed[f] && score > 0.0) scored.push_back({-score, f});
  }
  std::sort(scored.begin(), scored.end());
  std::vector<int> out;
  for (size_t i = 0; i < scored.size() && out.size() < 3; ++i) {
    out.push_back(scored[i].second);
  }
  // Red flags of the complaint's group must be asked even when this case's
  // condition is benign: that is how the dangerous rivals are ruled out.
  std::vector<std::pair<double, int>> flags;
  for (const RedFlagRule& rule : kb.red_flags) {
    for (const auto* list : {&rule.all_findings, &rule.any_findings}) {
      for (int f : *list) {
        if (!kb.findings[f].askable() || f == chief_complaint) continue;
        double best = self.finding_listed[f] ? self.finding_p[f] : 0.0;
        for (int r : rivals) {
          if (kb.conditions[r].finding_listed[f]) {
            best = std::max(best, kb.conditions[r].finding_p[f]);
          }
        }
        if (best >= 0.5) flags.push_back({-best, f});
      }
    }
  }
  std::sort(flags.begin(), flags.end());
  for (const auto& [score, f] : flags) {
    if (out.size() >= 5) break;
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  return out;
}

ClinicalCase GenerateCase(const KnowledgeBase& kb, uint64_t seed) {
  CaseRng rng(seed);
  ClinicalCase c;
  c.seed = seed;
  c.condition = rng.Below(static_cast<int>(kb.conditions.size()));
  const Condition& cond = kb.conditions[c.condition];
  c.male = rng.Uniform() < cond.p_male;
  c.age = cond.age_min + rng.Below(cond.age_max - cond.age_min + 1);
  c.chief_complaint = cond.chief_complaints[rng.Below(
      static_cast<int>(cond.chief_complaints.size()))];
  c.findings.resize(kb.findings.size());
  for (size_t f = 0; f < kb.findings.size(); ++f) {
    // Two draws per finding whatever the branch, so a change in one
    // finding's likelihood does not reshuffle every later finding.
    const double u_present = rng.Uniform();
    const double u_unknown = rng.Uniform();
    const int id = static_cast<int>(f);
    const double p = kb.FindingProbability(c.condition, id, c.male);
    if (id == c.chief_complaint || u_present < p) {
      c.findings[f] = FindingState::kPresent;
    } else if (u_unknown < kb.UnknownRate(id, c.male)) {
      c.findings[f] = FindingState::kUnknown;
    } else {
      c.findings[f] = FindingState::kAbsent;
    }
  }
  c.test_results.resize(kb.tests.size());
  for (size_t t = 0; t < kb.tests.size(); ++t) {
    c.test_results[t] = rng.Pick(cond.test_p[t]);
  }
  c.vitals = MakeVitals(kb, c, rng);
  std::vector<bool> present(kb.findings.size());
  for (size_t f = 0; f < present.size(); ++f)
    present[f] = c.Has(static_cast<int>(f));
  c.red_flags = FiredRedFlags(kb, present, c.test_results);
  c.required_disposition =
      c.red_flags.empty() ? cond.disposition : std::string("emergency");
  c.must_ask = MustAskFindings(kb, c.condition, c.chief_complaint);
  return c;
}

std::string Demographics(const ClinicalCase& c) {
  return fmt::format("{}-year-old {}", c.age, c.male ? "man" : "woman");
}

CaseBank::CaseBank(std::shared_ptr<const KnowledgeBase> kb, SplitSizes sizes,
                   uint64_t base_seed)
    : kb_(std::move(kb)) {
  std::unordered_set<uint64_t> seen;
  const int64_t total = sizes.train + sizes.validation + sizes.test;
  // Each split is 1/12 of the hash space (test, validation) or 10/12 (train);
  // the loop stops long before this bound in practice.
  const int64_t max_candidates = 40 * std::max<int64_t>(total, 1);
  for (int64_t k = 0; k < max_candidates; ++k) {
    if (static_cast<int64_t>(train_.size()) >= sizes.train &&
        static_cast<int64_t>(validation_.size()) >= sizes.validation &&
        static_cast<int64_t>(test_.size()) >= sizes.test) {
      return;
    }
    ClinicalCase c =
        GenerateCase(*kb_, MixSeed(base_seed ^ static_cast<uint64_t>(k)));
    const uint64_t fp = c.Fingerprint();
    if (!seen.insert(fp).second) continue;
    const uint64_t bucket = MixSeed(fp) % 12;
    auto& split = bucket < 10 ? train_ : bucket == 10 ? validation_ : test_;
    const int64_t want = bucket < 10    ? sizes.train
                         : bucket == 10 ? sizes.validation
                                        : sizes.test;
    if (static_cast<int64_t>(split.size()) < want)
      split.push_back(std::move(c));
  }
  throw InternalError(fmt::format(
      "case bank: could not fill the splits (train {}/{}, validation {}/{}, "
      "test {}/{}) from {} candidates; the knowledge base is too small for "
      "that many distinct cases",
      train_.size(), sizes.train, validation_.size(), sizes.validation,
      test_.size(), sizes.test, max_candidates));
}

std::shared_ptr<const CaseBank> CaseBank::For(
    std::shared_ptr<const KnowledgeBase> kb) {
  static std::mutex mu;
  static std::vector<std::shared_ptr<const CaseBank>> banks;
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& b : banks) {
    if (b->kb_.get() == kb.get()) return b;
  }
  auto bank = std::make_shared<CaseBank>(std::move(kb), SplitSizes{});
  banks.push_back(bank);
  return bank;
}

const std::vector<ClinicalCase>& CaseBank::Split(
    const std::string& split) const {
  if (split == "train") return train_;
  if (split == "validation") return validation_;
  if (split == "test") return test_;
  throw BadRequest(fmt::format(
      "split: unknown split \"{}\"; expected one of train, validation, test",
      split));
}

const ClinicalCase& CaseBank::Get(const std::string& split,
                                  int64_t index) const {
  const auto& cases = Split(split);
  if (index < 0 || index >= static_cast<int64_t>(cases.size())) {
    throw BadRequest(fmt::format(
        "task_index: {} is out of range for split \"{}\"; expected 0 <= "
        "task_index < {}",
        index, split, cases.size()));
  }
  return cases[static_cast<size_t>(index)];
}

int64_t CaseBank::Size(const std::string& split) const {
  return static_cast<int64_t>(Split(split).size());
}

std::map<std::string, int64_t> CaseBank::Sizes() const {
  return {{"train", Size("train")},
          {"validation", Size("validation")},
          {"test", Size("test")}};
}

}  // namespace clinrl::envs::dx
