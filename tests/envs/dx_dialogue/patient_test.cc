#include "envs/dx_dialogue/patient.h"

#include <gtest/gtest.h>

#include "envs/dx_dialogue/phrase_matcher.h"

namespace clinrl::envs::dx {
namespace {

std::shared_ptr<const CaseBank> Bank() {
  return CaseBank::For(KnowledgeBase::Default());
}

// One test case per condition, so every condition's wording is checked.
std::vector<const ClinicalCase*> OneCasePerCondition() {
  const auto bank = Bank();
  std::vector<const ClinicalCase*> out(bank->kb().conditions.size(), nullptr);
  for (const char* split : {"test", "validation", "train"}) {
    for (int64_t i = 0; i < bank->Size(split); ++i) {
      const ClinicalCase& c = bank->Get(split, i);
      if (out[c.condition] == nullptr) out[c.condition] = &c;
    }
  }
  return out;
}

bool Mentions(const std::string& text, const std::string& phrase) {
  return (" " + NormalizeText(text) + " ")
             .find(" " + NormalizeText(phrase) + " ") != std::string::npos;
}

TEST(RulePatientTest, RevealsAFactOnlyWhenItsNameOrASynonymIsAsked) {
  const auto kb = KnowledgeBase::Default();
  const ClinicalCase& c = Bank()->Get("test", 0);
  RulePatient patient(kb, c, {});
  for (int f : kb->AskableFindings()) {
    std::vector<std::string> phrases = {kb->findings[f].name};
    for (const auto& s : kb->findings[f].synonyms) phrases.push_back(s);
    for (const auto& phrase : phrases) {
      const PatientReply r = patient.Answer("Do you have " + phrase + "?");
      ASSERT_EQ(r.revealed.size(), 1u) << phrase;
      EXPECT_EQ(r.revealed[0]["finding"], kb->findings[f].name) << phrase;
      // The reply names no finding other than the one asked.
      for (int g : kb->finding_matcher.Match(r.text)) EXPECT_EQ(g, f) << r.text;
    }
  }
  for (const char* q : {"How are you today?", "Tell me everything.",
                        "What brings you in?", ""}) {
    const PatientReply r = patient.Answer(q);
    EXPECT_TRUE(r.revealed.empty()) << q;
    EXPECT_TRUE(kb->finding_matcher.Match(r.text).empty()) << r.text;
  }
}

TEST(RulePatientTest, AnswersYesNoOrNotSureByTheCaseFacts) {
  const auto kb = KnowledgeBase::Default();
  int checked[3] = {0, 0, 0};
  for (int64_t i = 0; i < 20; ++i) {
    const ClinicalCase& c = Bank()->Get("test", i);
    RulePatient patient(kb, c, {Persona::kPlain, {}});
    for (int f : kb->AskableFindings()) {
      const PatientReply r = patient.Answer(kb->findings[f].name);
      switch (c.findings[f]) {
        case FindingState::kPresent:
          EXPECT_EQ(r.text, "Yes, " + kb->findings[f].name + ".");
          EXPECT_EQ(r.revealed[0]["answer"], "yes");
          ++checked[0];
          break;
        case FindingState::kAbsent:
          EXPECT_EQ(r.text, "No.");
          EXPECT_EQ(r.revealed[0]["answer"], "no");
          ++checked[1];
          break;
        case FindingState::kUnknown:
          EXPECT_EQ(r.text, "I'm not sure.");
          EXPECT_EQ(r.revealed[0]["answer"], "unsure");
          ++checked[2];
          break;
      }
    }
    // Exam signs are not the patient's to know.
    const PatientReply sign = patient.Answer("crackles");
    EXPECT_EQ(sign.revealed[0]["answer"], "unsure");
  }
  EXPECT_GT(checked[0], 0);
  EXPECT_GT(checked[1], 0);
  EXPECT_GT(checked[2], 0);
}

TEST(RulePatientTest, NeverNamesTheDiagnosisWhateverIsAsked) {
  const auto kb = KnowledgeBase::Default();
  // The whole vocabulary: findings, tests, exam systems and conditions.
  std::vector<std::string> questions;
  for (const auto& f : kb->findings) {
    questions.push_back(f.name);
    for (const auto& s : f.synonyms) questions.push_back("any " + s + "?");
  }
  for (const auto& t : kb->tests) questions.push_back(t.name);
  for (const auto& s : kb->systems) questions.push_back(s.name);
  for (const auto& c : kb->conditions) {
    questions.push_back("do you have " + c.name + "?");
    for (const auto& a : c.aliases) questions.push_back(a);
    questions.push_back(c.icd10);
  }
  questions.push_back("what is your diagnosis?");
  questions.push_back("chest pain, fever and cough?");
  PatientNoise all_noise{0.5, true, true, 0.5};
  int64_t answers = 0;
  for (const ClinicalCase* c : OneCasePerCondition()) {
    ASSERT_NE(c, nullptr);
    const Condition& truth = kb->conditions[c->condition];
    std::vector<std::string> banned = truth.aliases;
    banned.push_back(truth.name);
    for (Persona persona : {Persona::kTerse, Persona::kPlain,
                            Persona::kTalkative, Persona::kAnxious}) {
      for (const PatientNoise& noise : {PatientNoise{}, all_noise}) {
        RulePatient patient(kb, *c, {persona, noise});
        std::vector<std::string> texts = {patient.Presentation()};
        for (const auto& q : questions) texts.push_back(patient.Answer(q).text);
        for (const auto& text : texts) {
          ++answers;
          for (const auto& b : banned) {
            ASSERT_FALSE(Mentions(text, b))
                << truth.name << " leaked as \"" << b << "\" in: " << text;
          }
          ASSERT_EQ(text.find(truth.icd10), std::string::npos) << text;
        }
      }
    }
  }
  EXPECT_GT(answers, 100000);
}

// Noise changes answers only as docs/envs/dx_dialogue.md says.
class NoiseTest : public ::testing::Test {
 protected:
  void Compare(const PatientNoise& noise,
               const std::function<void(int f, const PatientReply& base,
                                        const PatientReply& noisy)>& check) {
    for (int64_t i = 0; i < 40; ++i) {
      const ClinicalCase& c = Bank()->Get("validation", i);
      RulePatient base(kb_, c, {Persona::kPlain, {}});
      RulePatient noisy(kb_, c, {Persona::kPlain, noise});
      for (int f : kb_->AskableFindings()) {
        check(f, base.Answer(kb_->findings[f].name),
              noisy.Answer(kb_->findings[f].name));
      }
    }
  }
  std::shared_ptr<const KnowledgeBase> kb_ = KnowledgeBase::Default();
};

TEST_F(NoiseTest, VagueOnlySoftensYesAnswers) {
  int softened = 0, kept = 0;
  Compare({0.5, false, false, 0.0},
          [&](int, const PatientReply& base, const PatientReply& noisy) {
            if (base.revealed[0]["answer"] != "yes") {
              EXPECT_EQ(noisy.text, base.text);
              EXPECT_EQ(noisy.revealed, base.revealed);
            } else if (noisy.revealed[0]["answer"] == "vague") {
              EXPECT_EQ(noisy.text, "Maybe, a little.");
              ++softened;
            } else {
              EXPECT_EQ(noisy.text, base.text);
              ++kept;
            }
          });
  EXPECT_GT(softened, 0);
  EXPECT_GT(kept, 0);
}

TEST_F(NoiseTest, DenyOneDeniesExactlyOnePresentFindingNotTheComplaint) {
  for (int64_t i = 0; i < 40; ++i) {
    const ClinicalCase& c = Bank()->Get("validation", i);
    RulePatient base(kb_, c, {});
    RulePatient noisy(kb_, c, {Persona::kPlain, {0.0, true, false, 0.0}});
    int changed = 0;
    for (int f : kb_->AskableFindings()) {
      const auto a = base.Answer(kb_->findings[f].name);
      const auto b = noisy.Answer(kb_->findings[f].name);
      if (a.text == b.text) continue;
      ++changed;
      EXPECT_EQ(f, noisy.denied_finding());
      EXPECT_NE(f, c.chief_complaint);
      EXPECT_EQ(a.revealed[0]["answer"], "yes");
      EXPECT_EQ(b.text, "No.");
    }
    EXPECT_EQ(changed, noisy.denied_finding() >= 0 ? 1 : 0);
  }
}

TEST_F(NoiseTest, LayTermsChangeOnlyTheWords) {
  Compare({0.0, false, true, 0.0},
          [&](int f, const PatientReply& base, const PatientReply& noisy) {
            EXPECT_EQ(noisy.revealed, base.revealed);
            if (base.revealed[0]["answer"] == "yes") {
              EXPECT_EQ(noisy.text, "Yes, " + kb_->findings[f].lay + ".");
            } else {
              EXPECT_EQ(noisy.text, base.text);
            }
          });
}

TEST_F(NoiseTest, IrrelevantComplaintsOnlyAppendAnUnrelatedRemark) {
  for (const auto& remark : IrrelevantRemarks()) {
    EXPECT_TRUE(kb_->finding_matcher.Match(remark).empty()) << remark;
    EXPECT_TRUE(kb_->condition_matcher.Match(remark).empty()) << remark;
  }
  int added = 0;
  Compare({0.0, false, false, 0.5},
          [&](int, const PatientReply& base, const PatientReply& noisy) {
            EXPECT_EQ(noisy.revealed, base.revealed);
            ASSERT_EQ(noisy.text.rfind(base.text, 0), 0u) << noisy.text;
            if (noisy.text == base.text) return;
            const std::string extra = noisy.text.substr(base.text.size() + 1);
            const auto& r = IrrelevantRemarks();
            EXPECT_NE(std::find(r.begin(), r.end(), extra), r.end()) << extra;
            ++added;
          });
  EXPECT_GT(added, 0);
}

TEST_F(NoiseTest, PersonasChangeWordingNotFacts) {
  const ClinicalCase& c = Bank()->Get("test", 3);
  RulePatient plain(kb_, c, {Persona::kPlain, {}});
  for (Persona p : {Persona::kTerse, Persona::kTalkative, Persona::kAnxious}) {
    RulePatient other(kb_, c, {p, {}});
    for (int f : kb_->AskableFindings()) {
      EXPECT_EQ(other.Answer(kb_->findings[f].name).revealed,
                plain.Answer(kb_->findings[f].name).revealed);
    }
  }
  RulePatient terse(kb_, c, {Persona::kTerse, {}});
  const auto r = terse.Answer(kb_->findings[c.chief_complaint].name);
  EXPECT_EQ(r.text, "Yes.");
}

TEST_F(NoiseTest, AnswersAreStableWhenAskedAgain) {
  const ClinicalCase& c = Bank()->Get("test", 5);
  RulePatient p(kb_, c, {Persona::kPlain, {0.5, true, true, 0.0}});
  for (int f : kb_->AskableFindings()) {
    EXPECT_EQ(p.Answer(kb_->findings[f].name).text,
              p.Answer(kb_->findings[f].name).text);
  }
}

}  // namespace
}  // namespace clinrl::envs::dx
