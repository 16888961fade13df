#include "core/jsonl.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"

namespace clinrl {
namespace {

using nlohmann::json;

std::string FreshPath(const std::string& name) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::filesystem::remove(path);
  return path;
}

std::vector<json> ReadAll(const std::string& path, JsonlReadStats* stats) {
  std::vector<json> out;
  *stats = ReadJsonl(path, [&](const json& v, int64_t) { out.push_back(v); });
  return out;
}

TEST(JsonlTest, WritesAndReadsLines) {
  const std::string path = FreshPath("lines.jsonl");
  {
    JsonlWriter w(path);
    for (int i = 0; i < 5; ++i) w.Write({{"i", i}, {"text", "ü\n\"x"}});
    EXPECT_EQ(w.lines_written(), 5);
  }
  JsonlReadStats stats;
  const auto rows = ReadAll(path, &stats);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[3]["i"], 3);
  EXPECT_EQ(rows[3]["text"], "ü\n\"x");
  EXPECT_FALSE(stats.truncated_tail);
}

TEST(JsonlTest, TruncatedLastLineIsSkippedNotFatal) {
  const std::string path = FreshPath("torn.jsonl");
  {
    JsonlWriter w(path);
    w.Write({{"i", 0}});
    w.Write({{"i", 1}});
  }
  // A crash in the middle of the third record.
  std::ofstream(path, std::ios::app) << R"({"i": 2, "text": "hal)";
  JsonlReadStats stats;
  const auto rows = ReadAll(path, &stats);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(stats.truncated_tail);
  EXPECT_EQ(stats.lines, 2);
}

TEST(JsonlTest, ReopeningCutsTheTornLineBeforeAppending) {
  const std::string path = FreshPath("reopen.jsonl");
  {
    JsonlWriter w(path);
    w.Write({{"i", 0}});
  }
  std::ofstream(path, std::ios::app) << R"({"i": 1, "te)";
  {
    JsonlWriter w(path);
    w.Write({{"i", 2}});
  }
  JsonlReadStats stats;
  const auto rows = ReadAll(path, &stats);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["i"], 0);
  EXPECT_EQ(rows[1]["i"], 2);
  EXPECT_FALSE(stats.truncated_tail);
}

TEST(JsonlTest, ReopeningKeepsAWholeRecordMissingItsNewline) {
  const std::string path = FreshPath("nonewline.jsonl");
  std::ofstream(path) << "{\"i\": 0}\n{\"i\": 1}";
  {
    JsonlWriter w(path);
    w.Write({{"i", 2}});
  }
  JsonlReadStats stats;
  const auto rows = ReadAll(path, &stats);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1]["i"], 1);
}

TEST(JsonlTest, CorruptLineInTheMiddleIsAnErrorWithLineNumber) {
  const std::string path = FreshPath("corrupt.jsonl");
  std::ofstream(path) << "{\"i\": 0}\nnot json\n{\"i\": 2}\n";
  try {
    JsonlReadStats stats;
    ReadAll(path, &stats);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(":2: not a JSON line"),
              std::string::npos)
        << e.what();
  }
}

TEST(JsonlTest, SkipModeCountsBadMiddleLinesAndReadsTheRest) {
  const std::string path = FreshPath("skip.jsonl");
  std::ofstream(path) << "{\"i\": 0}\nnot json\n42\n{\"i\": 3}\n{\"i\": 4";
  std::vector<int64_t> lines;
  const JsonlReadStats stats = ReadJsonl(
      path, [&](const nlohmann::json&, int64_t line) { lines.push_back(line); },
      BadJsonlLine::kSkip);
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(stats.lines, 2);
  EXPECT_EQ(stats.bad_lines, 2);  // "not json" and a number, not an object
  EXPECT_TRUE(stats.truncated_tail);
}

TEST(JsonlTest, MissingFileIsAnError) {
  JsonlReadStats stats;
  EXPECT_THROW(ReadAll(FreshPath("absent.jsonl"), &stats), IoError);
}

}  // namespace
}  // namespace clinrl
