#include "core/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"

namespace clinrl {
namespace {

TEST(AtomicFileTest, ReplacesWholeFileAndLeavesNoTemporaries) {
  const std::string dir = ::testing::TempDir() + "/atomic_case";
  std::filesystem::remove_all(dir);
  MakeDirectories(dir);
  const std::string path = dir + "/config.json";
  WriteFileAtomic(path, "first");
  WriteFileAtomic(path, "second, longer content");
  EXPECT_EQ(ReadFile(path), "second, longer content");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(AtomicFileTest, UnwritableTargetThrowsIoErrorNamingPath) {
  try {
    WriteFileAtomic("/proc/clinrl-no-such-dir/x.json", "data");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/clinrl-no-such-dir/x.json"),
              std::string::npos);
  }
  EXPECT_THROW(ReadFile("/nonexistent/clinrl/file"), IoError);
}

}  // namespace
}  // namespace clinrl
