#include "envs/ehr_fhir/fhir_time.h"

#include <gtest/gtest.h>

namespace clinrl::envs::ehr {
namespace {

// Reference seconds from Python's calendar.timegm.
TEST(FhirTimeTest, ParsesEveryPrecisionAsARange) {
  auto t = ParseFhirTime("2023-11-13T10:15:00+00:00");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->lo, 1699870500);
  EXPECT_EQ(t->hi, 1699870501);
  auto offset = ParseFhirTime("2023-11-13T10:15:00+05:00");
  ASSERT_TRUE(offset);
  EXPECT_EQ(offset->lo, 1699852500);
  auto z = ParseFhirTime("2023-11-13T10:15:00.250Z");
  ASSERT_TRUE(z);
  EXPECT_EQ(z->lo, 1699870500);
  auto minute = ParseFhirTime("2023-11-13T10:15");
  ASSERT_TRUE(minute);
  EXPECT_EQ(minute->hi - minute->lo, 60);
  auto leap = ParseFhirTime("2024-02-29");
  ASSERT_TRUE(leap);
  EXPECT_EQ(leap->lo, 1709164800);
  EXPECT_EQ(leap->hi, 1709251200);
  auto month = ParseFhirTime("2024-02");
  ASSERT_TRUE(month);
  EXPECT_EQ(month->hi, 1709251200);
  auto before_epoch = ParseFhirTime("1969-12-31T23:00:00Z");
  ASSERT_TRUE(before_epoch);
  EXPECT_EQ(before_epoch->lo, -3600);
}

TEST(FhirTimeTest, RejectsMalformedValues) {
  for (const char* bad :
       {"", "2023-13", "2023-02-30", "2023-1-01", "2023-11-13T25:00",
        "2023-11-13 10:15", "2023-11-13T10:15:00+0500", "20231113", "abc"}) {
    EXPECT_FALSE(ParseFhirTime(bad)) << bad;
  }
}

TEST(FhirTimeTest, FormatsAndComputesAge) {
  EXPECT_EQ(FormatInstant(1699870500), "2023-11-13T10:15:00+00:00");
  EXPECT_EQ(FormatInstant(1700000000), "2023-11-14T22:13:20+00:00");
  EXPECT_EQ(FormatInstant(-3600), "1969-12-31T23:00:00+00:00");
  EXPECT_EQ(FormatDate(1709164800), "2024-02-29");
  EXPECT_EQ(AgeInYears("1980-11-13", 1699870500), 43);
  EXPECT_EQ(AgeInYears("1980-11-14", 1699870500), 42);
}

}  // namespace
}  // namespace clinrl::envs::ehr
