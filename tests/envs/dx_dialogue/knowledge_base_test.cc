#include "envs/dx_dialogue/knowledge_base.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/error.h"

namespace clinrl::envs::dx {
namespace {

using nlohmann::json;

json ShippedJson() {
  std::ifstream in(std::string(CLINRL_SOURCE_DIR) +
                   "/envs/dx_dialogue/data/knowledge_base.json");
  return json::parse(in);
}

TEST(KnowledgeBaseTest, ShipsEnoughConditionsAndSpecialties) {
  const auto kb = KnowledgeBase::Default();
  EXPECT_GE(kb->conditions.size(), 40u);
  std::set<std::string> specialties, codes;
  for (const auto& c : kb->conditions) {
    specialties.insert(c.specialty);
    EXPECT_TRUE(codes.insert(CanonicalIcd10(c.icd10)).second) << c.icd10;
    EXPECT_FALSE(c.source.empty()) << c.name;
    // Every source key a condition cites is in the bibliography.
    std::string key;
    for (char ch : c.source + ";") {
      if (ch == ';') {
        const auto b = key.find_first_not_of(' ');
        if (b != std::string::npos) {
          EXPECT_TRUE(kb->sources.count(key.substr(b)))
              << c.name << ": " << key;
        }
        key.clear();
      } else {
        key.push_back(ch);
      }
    }
  }
  EXPECT_GE(specialties.size(), 8u);
  for (const char* s : {"cardiology", "respiratory", "gastroenterology",
                        "neurology", "infectious disease", "endocrinology",
                        "renal/urology", "musculoskeletal"}) {
    EXPECT_TRUE(specialties.count(s)) << s;
  }
}

TEST(KnowledgeBaseTest, EveryFindingHasSynonymsAndLayWords) {
  const auto kb = KnowledgeBase::Default();
  for (const auto& f : kb->findings) {
    EXPECT_FALSE(f.synonyms.empty()) << f.name;
    if (f.askable()) {
      EXPECT_NE(f.lay, "") << f.name;
    }
  }
  for (const auto& t : kb->tests) EXPECT_GT(t.cost, 0) << t.name;
  for (const auto& s : kb->systems) EXPECT_GT(s.cost, 0) << s.name;
}

TEST(KnowledgeBaseTest, PresentationsOverlapSoQuestionsMatter) {
  const auto kb = KnowledgeBase::Default();
  std::map<int, int> sharing;
  for (const auto& c : kb->conditions) {
    for (int cc : c.chief_complaints) ++sharing[cc];
  }
  int shared = 0;
  for (const auto& c : kb->conditions) {
    bool any = false;
    for (int cc : c.chief_complaints) any = any || sharing[cc] >= 2;
    shared += any;
  }
  EXPECT_GE(shared, static_cast<int>(kb->conditions.size()) - 2);
  EXPECT_GE(sharing[kb->FindingIndex("chest pain")], 5);
  EXPECT_GE(sharing[kb->FindingIndex("abdominal pain")], 5);
  EXPECT_GE(sharing[kb->FindingIndex("headache")], 3);
}

TEST(KnowledgeBaseTest, RedFlagsCoverTheClassicEmergencies) {
  const auto kb = KnowledgeBase::Default();
  std::set<std::string> names;
  for (const auto& r : kb->red_flags) names.insert(r.name);
  EXPECT_TRUE(names.count("chest pain with ST elevation"));
  EXPECT_TRUE(names.count("stroke signs"));
  EXPECT_TRUE(names.count("fever with hypotension (sepsis)"));
}

TEST(KnowledgeBaseTest, RejectsAnUnknownFindingNamingThePath) {
  json j = ShippedJson();
  j["conditions"][3]["findings"]["chest pian"] = 0.5;
  try {
    KnowledgeBase::FromJson(j);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("conditions[3].findings.chest pian"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("unknown finding"), std::string::npos) << msg;
  }
}

TEST(KnowledgeBaseTest, RejectsResultProbabilitiesThatDoNotSumToOne) {
  json j = ShippedJson();
  j["conditions"][0]["tests"]["troponin"] = {{"elevated", 0.5},
                                             {"normal", 0.2}};
  try {
    KnowledgeBase::FromJson(j);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("conditions[0].tests.troponin"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("sum to 0.7"), std::string::npos)
        << e.what();
  }
}

TEST(KnowledgeBaseTest, RejectsBadCodesAndDispositions) {
  json j = ShippedJson();
  j["conditions"][1]["icd10"] = "angina";
  EXPECT_THROW(KnowledgeBase::FromJson(j), ConfigError);
  j = ShippedJson();
  j["conditions"][1]["disposition"] = "pharmacy";
  EXPECT_THROW(KnowledgeBase::FromJson(j), ConfigError);
  j = ShippedJson();
  j["findings"][1]["synonyms"].push_back("chest discomfort");  // chest pain's
  EXPECT_THROW(KnowledgeBase::FromJson(j), ConfigError);
}

TEST(KnowledgeBaseTest, CanonicalIcd10AcceptsCommonSpellings) {
  EXPECT_EQ(CanonicalIcd10("I21.9"), "I219");
  EXPECT_EQ(CanonicalIcd10("i219"), "I219");
  EXPECT_EQ(CanonicalIcd10("N10"), "N10");
  EXPECT_EQ(CanonicalIcd10("I2.19"), "");
  EXPECT_EQ(CanonicalIcd10("flu"), "");
  const auto kb = KnowledgeBase::Default();
  EXPECT_EQ(kb->conditions[kb->ConditionByCode("i21.9")].name,
            "acute myocardial infarction");
}

}  // namespace
}  // namespace clinrl::envs::dx
