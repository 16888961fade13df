#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace clinrl {
namespace {

// Check values from RFC 3720 (iSCSI), appendix B.4, and the CRC catalogue.
TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);
  const std::string ones(32, '\xff');
  EXPECT_EQ(Crc32c(ones), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32cTest, IncrementalEqualsWhole) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>(i * 7 + 3);
  const uint32_t whole = Crc32c(text);
  for (size_t cut :
       {size_t{1}, size_t{7}, size_t{8}, size_t{500}, size_t{999}}) {
    EXPECT_EQ(Crc32c(text.substr(cut), Crc32c(text.substr(0, cut))), whole);
  }
}

TEST(Crc32cTest, MaskMatchesTfRecordDefinition) {
  const uint32_t crc = Crc32c("123456789");
  EXPECT_EQ(MaskCrc32c(crc),
            static_cast<uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
  EXPECT_NE(MaskCrc32c(crc), crc);
}

}  // namespace
}  // namespace clinrl
