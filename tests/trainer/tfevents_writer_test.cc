#include "trainer/tfevents_writer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "tests/trainer/reference_runner.h"

namespace clinrl::trainer {
namespace {

TEST(TfEventsWriterTest, IndependentDecoderFindsEveryMetric) {
  const std::string dir = ::testing::TempDir() + "/tfevents_case";
  std::filesystem::remove_all(dir);
  MakeDirectories(dir);
  std::string path;
  {
    TfEventsWriter writer(dir);
    path = writer.path();
    writer.AddText("config", "{\"trainer\": {\"lr\": 3e-06}}", 0);
    for (int step = 1; step <= 3; ++step) {
      writer.AddScalars({{"reward/total", 0.25 * step},
                         {"reward/icd10", 0.5},
                         {"kl", 0.001 * step},
                         {"clip_frac/low", 0.0}},
                        step);
    }
    writer.AddScalar("length/mean", 42.0, 3);
  }
  EXPECT_EQ(std::filesystem::path(path).filename().string().rfind(
                "events.out.tfevents.", 0),
            0u);
  // The decoder reads the file path from the JSON input's "path".
  const auto decoded = clinrl::testing::RunPythonReferenceArgs(
      "tests/trainer/reference/tfevents_decode.py", path);
  EXPECT_EQ(decoded["file_version"], "brain.Event:2");
  EXPECT_EQ(decoded["records"], 6);
  std::map<std::pair<int, std::string>, double> scalars;
  for (const auto& s : decoded["scalars"]) {
    scalars[{s[0].get<int>(), s[1].get<std::string>()}] = s[2].get<double>();
  }
  EXPECT_EQ(scalars.size(), 13u);
  EXPECT_FLOAT_EQ(scalars.at({2, "reward/total"}), 0.5f);
  EXPECT_FLOAT_EQ(scalars.at({3, "kl"}), 0.003f);
  EXPECT_FLOAT_EQ(scalars.at({1, "clip_frac/low"}), 0.0f);
  EXPECT_FLOAT_EQ(scalars.at({3, "length/mean"}), 42.0f);
  ASSERT_EQ(decoded["texts"].size(), 1u);
  EXPECT_EQ(decoded["texts"][0][1], "config");
  EXPECT_EQ(decoded["texts"][0][2], "{\"trainer\": {\"lr\": 3e-06}}");
}

TEST(TfEventsWriterTest, FramingCarriesLengthAndMaskedCrcs) {
  const std::string record = TfEventsWriter::FrameRecord("abc");
  ASSERT_EQ(record.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(record[0], 3);
  EXPECT_EQ(record.substr(12, 3), "abc");
}

}  // namespace
}  // namespace clinrl::trainer
