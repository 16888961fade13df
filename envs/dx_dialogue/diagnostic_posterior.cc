#include "envs/dx_dialogue/diagnostic_posterior.h"

#include <algorithm>
#include <cmath>

namespace clinrl::envs::dx {

namespace {

// Floors keep one contradicting observation (a noisy patient) from zeroing
// the true condition for good.
constexpr double kFloor = 1e-4;
constexpr double kAlive = 1e-5;

double EntropyOf(const std::vector<double>& p) {
  double total = 0.0, h = 0.0;
  for (double x : p) total += x;
  if (total <= 0.0) return 0.0;
  for (double x : p) {
    if (x > 0.0) {
      const double q = x / total;
      h -= q * std::log(q);
    }
  }
  return h;
}

}  // namespace

DiagnosticPosterior::DiagnosticPosterior(
    std::shared_ptr<const KnowledgeBase> kb)
    : kb_(std::move(kb)), log_w_(kb_->conditions.size(), 0.0) {}

void DiagnosticPosterior::Start(int age, bool male, int chief_complaint) {
  male_ = male;
  for (size_t c = 0; c < kb_->conditions.size(); ++c) {
    const Condition& cond = kb_->conditions[c];
    double lw = 0.0;
    lw += (age >= cond.age_min && age <= cond.age_max)
              ? -std::log(static_cast<double>(cond.age_max - cond.age_min + 1))
              : std::log(1e-6);
    lw += std::log(std::max(male ? cond.p_male : 1.0 - cond.p_male, 1e-6));
    const auto& cc = cond.chief_complaints;
    lw += std::find(cc.begin(), cc.end(), chief_complaint) != cc.end()
              ? -std::log(static_cast<double>(cc.size()))
              : std::log(1e-6);
    log_w_[c] = lw;
  }
}

void DiagnosticPosterior::ObserveAnswer(int finding,
                                        const std::string& answer) {
  if (answer != "yes" && answer != "no" && answer != "unsure") return;
  const double u = kb_->UnknownRate(finding, male_);
  for (size_t c = 0; c < log_w_.size(); ++c) {
    const double p =
        kb_->FindingProbability(static_cast<int>(c), finding, male_);
    const double l = answer == "yes"  ? p
                     : answer == "no" ? (1.0 - p) * (1.0 - u)
                                      : (1.0 - p) * u;
    log_w_[c] += std::log(std::max(l, kFloor));
  }
}

void DiagnosticPosterior::ObserveSign(int finding, bool present) {
  for (size_t c = 0; c < log_w_.size(); ++c) {
    const double p =
        kb_->FindingProbability(static_cast<int>(c), finding, male_);
    log_w_[c] += std::log(std::max(present ? p : 1.0 - p, kFloor));
  }
}

void DiagnosticPosterior::ObserveTest(int test, int result) {
  for (size_t c = 0; c < log_w_.size(); ++c) {
    log_w_[c] += std::log(std::max(
        kb_->conditions[c].test_p[test][static_cast<size_t>(result)], kFloor));
  }
}

std::vector<double> DiagnosticPosterior::Probabilities() const {
  const double top = *std::max_element(log_w_.begin(), log_w_.end());
  std::vector<double> p(log_w_.size());
  double total = 0.0;
  for (size_t c = 0; c < p.size(); ++c) {
    p[c] = std::exp(log_w_[c] - top);
    total += p[c];
  }
  for (double& x : p) x /= total;
  return p;
}

int DiagnosticPosterior::Mode() const {
  return static_cast<int>(std::max_element(log_w_.begin(), log_w_.end()) -
                          log_w_.begin());
}

double DiagnosticPosterior::Entropy() const {
  return EntropyOf(Probabilities());
}

void DiagnosticPosterior::Alive(std::vector<int>* ids,
                                std::vector<double>* p) const {
  const auto all = Probabilities();
  for (size_t c = 0; c < all.size(); ++c) {
    if (all[c] > kAlive) {
      ids->push_back(static_cast<int>(c));
      p->push_back(all[c]);
    }
  }
}

double DiagnosticPosterior::ExpectedEntropyAfterAsk(int finding) const {
  std::vector<int> ids;
  std::vector<double> p;
  Alive(&ids, &p);
  const double u = kb_->UnknownRate(finding, male_);
  double expected = 0.0;
  for (int outcome = 0; outcome < 3; ++outcome) {
    std::vector<double> joint(ids.size());
    double mass = 0.0;
    for (size_t i = 0; i < ids.size(); ++i) {
      const double q = kb_->FindingProbability(ids[i], finding, male_);
      const double l = outcome == 0   ? q
                       : outcome == 1 ? (1.0 - q) * (1.0 - u)
                                      : (1.0 - q) * u;
      joint[i] = p[i] * l;
      mass += joint[i];
    }
    if (mass > 0.0) expected += mass * EntropyOf(joint);
  }
  return expected;
}

double DiagnosticPosterior::ExpectedEntropyAfterExam(int system) const {
  std::vector<int> ids;
  std::vector<double> p;
  Alive(&ids, &p);
  // Signs whose likelihood is the same for every live condition tell
  // nothing; dropping them keeps the outcome enumeration small.
  std::vector<int> signs;
  for (int f : kb_->systems[system].signs) {
    double lo = 1.0, hi = 0.0;
    for (int c : ids) {
      const double q = kb_->FindingProbability(c, f, male_);
      lo = std::min(lo, q);
      hi = std::max(hi, q);
    }
    if (hi - lo > 1e-9) signs.push_back(f);
  }
  if (signs.size() > 12) signs.resize(12);
  const size_t outcomes = size_t{1} << signs.size();
  double expected = 0.0;
  std::vector<double> joint(ids.size());
  for (size_t o = 0; o < outcomes; ++o) {
    double mass = 0.0;
    for (size_t i = 0; i < ids.size(); ++i) {
      double l = p[i];
      for (size_t k = 0; k < signs.size(); ++k) {
        const double q = kb_->FindingProbability(ids[i], signs[k], male_);
        l *= (o >> k & 1) ? q : 1.0 - q;
      }
      joint[i] = l;
      mass += l;
    }
    if (mass > 0.0) expected += mass * EntropyOf(joint);
  }
  return expected;
}

double DiagnosticPosterior::ExpectedEntropyAfterTest(int test) const {
  std::vector<int> ids;
  std::vector<double> p;
  Alive(&ids, &p);
  double expected = 0.0;
  for (size_t r = 0; r < kb_->tests[test].results.size(); ++r) {
    std::vector<double> joint(ids.size());
    double mass = 0.0;
    for (size_t i = 0; i < ids.size(); ++i) {
      joint[i] = p[i] * kb_->conditions[ids[i]].test_p[test][r];
      mass += joint[i];
    }
    if (mass > 0.0) expected += mass * EntropyOf(joint);
  }
  return expected;
}

}  // namespace clinrl::envs::dx
