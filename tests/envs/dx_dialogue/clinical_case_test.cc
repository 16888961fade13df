#include "envs/dx_dialogue/clinical_case.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"

namespace clinrl::envs::dx {
namespace {

TEST(ClinicalCaseTest, SameSeedGivesTheSameCase) {
  const auto kb = KnowledgeBase::Default();
  for (uint64_t seed : {0ULL, 1ULL, 12345ULL, 0xffffffffffULL}) {
    const ClinicalCase a = GenerateCase(*kb, seed);
    const ClinicalCase b = GenerateCase(*kb, seed);
    EXPECT_EQ(a.condition, b.condition);
    EXPECT_EQ(a.age, b.age);
    EXPECT_EQ(a.male, b.male);
    EXPECT_EQ(a.findings, b.findings);
    EXPECT_EQ(a.test_results, b.test_results);
    EXPECT_EQ(a.vitals.heart_rate, b.vitals.heart_rate);
    EXPECT_EQ(a.Fingerprint(), b.Fingerprint());
  }
}

TEST(ClinicalCaseTest, CasesAreConsistentWithTheirCondition) {
  const auto kb = KnowledgeBase::Default();
  std::set<int> conditions;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    const ClinicalCase c = GenerateCase(*kb, seed);
    const Condition& cond = kb->conditions[c.condition];
    conditions.insert(c.condition);
    EXPECT_GE(c.age, cond.age_min);
    EXPECT_LE(c.age, cond.age_max);
    EXPECT_TRUE(c.Has(c.chief_complaint));
    EXPECT_NE(std::find(cond.chief_complaints.begin(),
                        cond.chief_complaints.end(), c.chief_complaint),
              cond.chief_complaints.end());
    if (c.male) {
      EXPECT_EQ(c.findings[kb->FindingIndex("heavy periods")],
                FindingState::kAbsent);
    }
    for (size_t f = 0; f < kb->findings.size(); ++f) {
      if (kb->findings[f].kind == FindingKind::kSign) {
        EXPECT_NE(c.findings[f], FindingState::kUnknown);
      }
    }
    // Red flag status and the required disposition agree.
    EXPECT_EQ(c.required_disposition,
              c.red_flags.empty() ? cond.disposition : "emergency");
    EXPECT_FALSE(c.must_ask.empty());
    EXPECT_LE(c.must_ask.size(), 5u);
    for (int f : c.must_ask) EXPECT_TRUE(kb->findings[f].askable());
  }
  EXPECT_EQ(conditions.size(), kb->conditions.size());
}

TEST(ClinicalCaseTest, StElevationMakesAChestPainCaseARedFlag) {
  const auto kb = KnowledgeBase::Default();
  std::vector<bool> present(kb->findings.size(), false);
  std::vector<int> results(kb->tests.size(), 0);
  present[kb->FindingIndex("chest pain")] = true;
  EXPECT_TRUE(FiredRedFlags(*kb, present, results).empty());
  results[kb->TestIndex("ecg")] = 1;  // ST elevation
  const auto fired = FiredRedFlags(*kb, present, results);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(kb->red_flags[fired[0]].name, "chest pain with ST elevation");
}

TEST(CaseBankTest, SplitsAreLargeDisjointAndReproducible) {
  const auto bank = CaseBank::For(KnowledgeBase::Default());
  EXPECT_GE(bank->Size("train"), 2000);
  EXPECT_GE(bank->Size("validation"), 200);
  EXPECT_GE(bank->Size("test"), 200);
  std::map<uint64_t, std::string> owner;
  for (const char* split : {"train", "validation", "test"}) {
    for (int64_t i = 0; i < bank->Size(split); ++i) {
      const uint64_t fp = bank->Get(split, i).Fingerprint();
      const auto [it, fresh] = owner.emplace(fp, split);
      EXPECT_TRUE(fresh) << split << "[" << i << "] repeats a case of "
                         << it->second;
    }
  }
  // A second, independently built bank holds the same cases.
  const CaseBank again(KnowledgeBase::Default(), SplitSizes{});
  for (int64_t i = 0; i < bank->Size("test"); i += 17) {
    EXPECT_EQ(again.Get("test", i).Fingerprint(),
              bank->Get("test", i).Fingerprint());
  }
}

TEST(CaseBankTest, BadSplitOrIndexNamesTheAllowedValues) {
  const auto bank = CaseBank::For(KnowledgeBase::Default());
  try {
    bank->Get("dev", 0);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("train, validation, test"),
              std::string::npos);
  }
  try {
    bank->Get("test", bank->Size("test"));
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("task_index"), std::string::npos);
  }
}

}  // namespace
}  // namespace clinrl::envs::dx
