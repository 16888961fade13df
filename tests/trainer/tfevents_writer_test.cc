#include "trainer/tfevents_writer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/trainer/reference_runner.h"

namespace clinrl::trainer {
namespace {

// The reference is TensorBoard itself: its record reader (CRCs, framing)
// and its EventAccumulator (scalars, text plugin), run under the venv.
constexpr const char* kTensorBoardReader =
    "tests/trainer/reference/tensorboard_read.py";

nlohmann::json ReadWithTensorBoard(const std::string& path) {
  return clinrl::testing::RunPythonReferenceArgs(kTensorBoardReader, path);
}

// Runs the reader expecting it to refuse the file: its exit status and
// what it printed (stdout and stderr).
std::pair<int, std::string> RunReaderOnBadFile(const std::string& path) {
  const std::string command = std::string(CLINRL_PYTHON) + " " +
                              CLINRL_SOURCE_DIR + "/" + kTensorBoardReader +
                              " " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed: " + command};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(TfEventsWriterTest, TensorBoardReadsEveryMetric) {
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
  const auto decoded = ReadWithTensorBoard(path);
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
  EXPECT_EQ(decoded["texts"][0][0], 0);
  EXPECT_EQ(decoded["texts"][0][1], "config");
  EXPECT_EQ(decoded["texts"][0][2], "{\"trainer\": {\"lr\": 3e-06}}");
  // One line of text: the text plugin shows it as a Markdown paragraph.
  EXPECT_EQ(decoded["texts"][0][3].get<std::string>().rfind("<p>", 0), 0u)
      << decoded["texts"][0][3];
}

// The metric keys of one GRPO line and one evaluation line of a real
// metrics.jsonl (quickstart run), as training_run.cc passes them.
const std::vector<std::string> kGrpoKeys = {"accuracy",
                                            "advantage/abs_mean",
                                            "advantage/mean",
                                            "clip_frac/high",
                                            "clip_frac/low",
                                            "cost/mean",
                                            "entropy",
                                            "episodes",
                                            "flagged",
                                            "grad_norm",
                                            "groups/dropped_frac",
                                            "invalid_action_rate",
                                            "kl",
                                            "length/max",
                                            "length/mean",
                                            "loss",
                                            "lr",
                                            "pg_loss",
                                            "ratio/mean",
                                            "reward/cost",
                                            "reward/diagnosis",
                                            "reward/format",
                                            "reward/mean",
                                            "reward/safety",
                                            "reward/std",
                                            "termination/finished",
                                            "termination/max_turns",
                                            "throughput/rollout_tokens_per_s",
                                            "throughput/train_tokens_per_s",
                                            "time/learn_s",
                                            "time/reward_s",
                                            "time/rollout_s",
                                            "time/step_s",
                                            "tis/clip_frac",
                                            "tis/weight_mean",
                                            "train/policy_tokens",
                                            "train/recomputed_old_logprobs",
                                            "turns/mean"};

TEST(TfEventsWriterTest, EveryMetricsJsonlKeyHasAStableTag) {
  const std::string dir = ::testing::TempDir() + "/tfevents_tags";
  std::filesystem::remove_all(dir);
  MakeDirectories(dir);
  std::string path;
  {
    TfEventsWriter writer(dir);
    path = writer.path();
    std::map<std::string, double> grpo, eval;
    for (size_t i = 0; i < kGrpoKeys.size(); ++i) {
      grpo[kGrpoKeys[i]] = 0.5 + static_cast<double>(i);
      eval["eval/validation/" + kGrpoKeys[i]] = -1.0 - static_cast<double>(i);
    }
    writer.AddScalars(grpo, 301);
    writer.AddScalars(eval, 310);
  }
  // What a reviewer finds in TensorBoard, written out by hand: the batch
  // reward mean is reward/total, every other key keeps its name.
  std::map<std::pair<int, std::string>, double> expected;
  for (size_t i = 0; i < kGrpoKeys.size(); ++i) {
    std::string tag = kGrpoKeys[i];
    if (tag == "reward/mean") tag = "reward/total";
    if (tag == "reward/std") tag = "reward/total_std";
    expected[{301, tag}] = 0.5 + static_cast<double>(i);
    expected[{310, "eval/validation/" + tag}] = -1.0 - static_cast<double>(i);
  }
  const auto decoded = ReadWithTensorBoard(path);
  std::map<std::pair<int, std::string>, double> found;
  for (const auto& s : decoded["scalars"]) {
    found[{s[0].get<int>(), s[1].get<std::string>()}] = s[2].get<double>();
  }
  ASSERT_EQ(found.size(), expected.size());
  for (const auto& [key, value] : expected) {
    ASSERT_TRUE(found.count(key)) << key.second << " at step " << key.first;
    EXPECT_FLOAT_EQ(found.at(key), static_cast<float>(value)) << key.second;
  }
  EXPECT_TRUE(found.count({301, "reward/total"}));
  EXPECT_TRUE(found.count({310, "eval/validation/reward/total"}));
}

TEST(TfEventsWriterTest, TagsKeepOnlyCharactersTensorBoardAllows) {
  EXPECT_EQ(TfEventsWriter::TagForMetric("reward/rubric: accuracy (x)"),
            "reward/rubric__accuracy__x_");
  EXPECT_EQ(TfEventsWriter::TagForMetric("eval/test/reward/mean"),
            "eval/test/reward/total");
  EXPECT_EQ(TfEventsWriter::TagForMetric("eval/test/reward/safety"),
            "eval/test/reward/safety");
  EXPECT_EQ(TfEventsWriter::TagForMetric("clip_frac/low"), "clip_frac/low");
}

TEST(TfEventsWriterTest, EventsReachTheFileWithinTheFlushPeriod) {
  const std::string dir = ::testing::TempDir() + "/tfevents_flush";
  std::filesystem::remove_all(dir);
  MakeDirectories(dir);
  TfEventsWriter writer(dir, /*flush_every_s=*/0.2);
  writer.AddScalars({{"kl", 0.125}, {"entropy", 1.5}}, 7);
  // No further write and no explicit Flush: only the period may publish it.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const auto decoded = ReadWithTensorBoard(writer.path());
  EXPECT_EQ(decoded["records"], 2);
  std::set<std::string> tags;
  for (const auto& s : decoded["scalars"]) {
    EXPECT_EQ(s[0], 7);
    tags.insert(s[1].get<std::string>());
  }
  EXPECT_EQ(tags, (std::set<std::string>{"entropy", "kl"}));
}

TEST(TfEventsWriterTest, RejectsANonPositiveFlushPeriod) {
  const std::string dir = ::testing::TempDir() + "/tfevents_bad";
  MakeDirectories(dir);
  try {
    TfEventsWriter writer(dir, 0.0);
    FAIL() << "expected BadRequest";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("flush_every_s"), std::string::npos);
  }
}

TEST(TfEventsWriterTest, MultiLineTextIsAMarkdownCodeBlock) {
  const std::string dir = ::testing::TempDir() + "/tfevents_text";
  std::filesystem::remove_all(dir);
  MakeDirectories(dir);
  std::string path;
  {
    TfEventsWriter writer(dir);
    path = writer.path();
    writer.AddText("config", "{\n  \"lr\": 0.001\n}", 0);
  }
  const auto decoded = ReadWithTensorBoard(path);
  ASSERT_EQ(decoded["texts"].size(), 1u);
  EXPECT_EQ(decoded["texts"][0][2], "    {\n      \"lr\": 0.001\n    }");
  EXPECT_EQ(nlohmann::json::parse(decoded["texts"][0][2].get<std::string>()),
            nlohmann::json({{"lr", 0.001}}));
  // TensorBoard's text plugin renders it as a code block, the lines kept.
  const std::string html = decoded["texts"][0][3];
  EXPECT_EQ(html.rfind("<pre><code>{\n", 0), 0u) << html;
  EXPECT_NE(html.find("\n}\n</code></pre>"), std::string::npos) << html;
}

// Writes a small events file and returns its bytes.
std::string SmallEventsFile(const std::string& dir) {
  std::filesystem::remove_all(dir);
  MakeDirectories(dir);
  std::string path;
  {
    TfEventsWriter writer(dir);
    path = writer.path();
    writer.AddScalars({{"kl", 0.125}, {"entropy", 1.5}}, 1);
    writer.AddScalars({{"kl", 0.25}, {"entropy", 1.25}}, 2);
  }
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(TfEventsWriterTest, TensorBoardsRecordReaderRejectsACorruptFile) {
  const std::string dir = ::testing::TempDir() + "/tfevents_corrupt";
  const std::string bytes = SmallEventsFile(dir);
  const std::string good = dir + "/events.out.tfevents.good";
  std::ofstream(good, std::ios::binary) << bytes;
  ASSERT_EQ(ReadWithTensorBoard(good)["records"], 3);

  // One flipped bit inside the last record's data: its data CRC fails.
  std::string flipped = bytes;
  flipped[flipped.size() - 6] ^= 0x01;
  const std::string bad = dir + "/events.out.tfevents.flipped";
  std::ofstream(bad, std::ios::binary) << flipped;
  auto [status, out] = RunReaderOnBadFile(bad);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("failed event crc32 check"), std::string::npos) << out;
  EXPECT_NE(out.find("after 2 good records"), std::string::npos) << out;

  // A record cut short, as a crash mid-write would leave it.
  const std::string cut = dir + "/events.out.tfevents.cut";
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 2);
  std::tie(status, out) = RunReaderOnBadFile(cut);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("truncated record"), std::string::npos) << out;

  // A flipped bit in a length: the length CRC fails.
  std::string bad_length = bytes;
  bad_length[1] ^= 0x01;
  const std::string length = dir + "/events.out.tfevents.length";
  std::ofstream(length, std::ios::binary) << bad_length;
  std::tie(status, out) = RunReaderOnBadFile(length);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("failed header crc32 check"), std::string::npos) << out;
}

TEST(TfEventsWriterTest, FramingCarriesLengthAndMaskedCrcs) {
  const std::string record = TfEventsWriter::FrameRecord("abc");
  ASSERT_EQ(record.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(record[0], 3);
  EXPECT_EQ(record.substr(12, 3), "abc");
}

}  // namespace
}  // namespace clinrl::trainer
