// Bayesian belief over the knowledge base's conditions given what a doctor
// has seen: demographics and chief complaint, the patient's answers
// (yes / no / unsure), exam signs and test results. The likelihoods are the
// case generator's own, so the posterior is exact for noise-free patients.
// The oracle policy picks the action with the largest expected entropy drop
// per price, and diagnoses the posterior mode.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "envs/dx_dialogue/knowledge_base.h"

namespace clinrl::envs::dx {

class DiagnosticPosterior {
 public:
  explicit DiagnosticPosterior(std::shared_ptr<const KnowledgeBase> kb);

  void Start(int age, bool male, int chief_complaint);
  // answer: yes | no | unsure; anything else ("vague") carries no evidence.
  void ObserveAnswer(int finding, const std::string& answer);
  void ObserveSign(int finding, bool present);
  void ObserveTest(int test, int result);

  std::vector<double> Probabilities() const;
  int Mode() const;
  double Entropy() const;
  // Expected posterior entropy after the action, in nats.
  double ExpectedEntropyAfterAsk(int finding) const;
  double ExpectedEntropyAfterExam(int system) const;
  double ExpectedEntropyAfterTest(int test) const;

 private:
  // Conditions that still carry mass, with their probabilities.
  void Alive(std::vector<int>* ids, std::vector<double>* p) const;
  std::shared_ptr<const KnowledgeBase> kb_;
  std::vector<double> log_w_;
  bool male_ = false;
};

}  // namespace clinrl::envs::dx
