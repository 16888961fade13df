#include "trainer/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "policy/model_dir.h"
#include "tests/trainer/tiny_policy.h"
#include "trainer/non_finite.h"

namespace clinrl::trainer {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  return dir;
}

void WritePayload(const std::string& dir) {
  MakeDirectories(dir + "/model");
  std::ofstream(dir + "/model/model.safetensors") << std::string(5000, 'w');
  std::ofstream(dir + "/optimizer.bin") << "moments";
}

std::string ExpectRefused(const std::string& dir) {
  try {
    OpenCheckpoint(dir);
  } catch (const IoError& e) {
    return e.what();
  }
  ADD_FAILURE() << "checkpoint " << dir << " was accepted";
  return "";
}

TEST(CheckpointTest, WriteOpenAndLatest) {
  const std::string root = FreshDir("ckpt_ok");
  WriteCheckpoint(root, 10, WritePayload, {{"policy_version", 10}});
  const std::string dir =
      WriteCheckpoint(root, 20, WritePayload, {{"policy_version", 20}});
  EXPECT_EQ(LatestCheckpoint(root), dir);
  const CheckpointInfo info = OpenCheckpoint(dir);
  EXPECT_EQ(info.step, 20);
  EXPECT_EQ(info.state["policy_version"], 20);
  EXPECT_EQ(ReadFile(root + "/latest"), "step_00000020\n");
  EXPECT_EQ(ListCheckpoints(root).size(), 2u);
  PruneCheckpoints(root, 1);
  EXPECT_EQ(ListCheckpoints(root), std::vector<std::string>{dir});
}

TEST(CheckpointTest, CorruptedFileIsRefusedNamingIt) {
  const std::string root = FreshDir("ckpt_corrupt");
  const std::string dir = WriteCheckpoint(root, 1, WritePayload, {});
  {
    std::fstream f(dir + "/model/model.safetensors",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1234);
    f.put('X');
  }
  const std::string e = ExpectRefused(dir);
  EXPECT_NE(e.find("model/model.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("CRC-32C"), std::string::npos) << e;
}

TEST(CheckpointTest, TruncatedAndMissingFilesAreRefused) {
  const std::string root = FreshDir("ckpt_trunc");
  const std::string dir = WriteCheckpoint(root, 1, WritePayload, {});
  fs::resize_file(dir + "/model/model.safetensors", 100);
  EXPECT_NE(ExpectRefused(dir).find("truncated"), std::string::npos);
  const std::string dir2 = WriteCheckpoint(root, 2, WritePayload, {});
  fs::remove(dir2 + "/optimizer.bin");
  EXPECT_NE(ExpectRefused(dir2).find("optimizer.bin is missing"),
            std::string::npos);
}

TEST(CheckpointTest, HalfWrittenCheckpointIsNeverPickedNorLoaded) {
  const std::string root = FreshDir("ckpt_half");
  const std::string good = WriteCheckpoint(root, 5, WritePayload, {});
  // A crash while the payload was being written: the temporary folder stays.
  EXPECT_THROW(WriteCheckpoint(root, 6,
                               [](const std::string& dir) {
                                 WritePayload(dir);
                                 throw IoError("disk full (simulated)");
                               },
                               {}),
               IoError);
  EXPECT_EQ(LatestCheckpoint(root), good);
  // A step folder without its manifest (copied by hand, interrupted) is
  // refused.
  MakeDirectories(root + "/step_00000007");
  WritePayload(root + "/step_00000007");
  EXPECT_EQ(LatestCheckpoint(root), good);
  EXPECT_NE(ExpectRefused(root + "/step_00000007").find("no manifest.json"),
            std::string::npos);
  std::ofstream(good + "/manifest.json") << "{\"files\": ";
  EXPECT_NE(ExpectRefused(good).find("not a valid manifest"),
            std::string::npos);
}

// A diverged model is never checkpointed: the check names the checkpoint and
// the first bad tensor in the order given, and the last good checkpoint
// stays the newest.
TEST(CheckpointTest, NonFiniteWeightsAreRefusedAndTheLastGoodStaysLatest) {
  const std::string root = FreshDir("ckpt_non_finite");
  policy::Transformer model = testing::TinyPolicy();
  auto named = [&] {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& p : model->named_parameters()) {
      out.emplace_back(p.key(), p.value());
    }
    return out;
  };
  auto save = [&](int64_t step) {
    RequireFiniteCheckpoint(root, step, named());
    return WriteCheckpoint(root, step,
                           [&](const std::string& dir) {
                             policy::SaveModel(model, dir + "/model");
                           },
                           {});
  };
  const std::string good = save(1);
  {
    torch::NoGradGuard no_grad;
    auto params = model->named_parameters();
    params["model.layers.1.mlp.up_proj.weight"][3][2] = -INFINITY;
    params["model.layers.0.self_attn.k_proj.weight"][0][5] = NAN;
  }
  try {
    save(2);
    FAIL() << "a checkpoint with NaN weights was written";
  } catch (const NonFiniteError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("step_00000002"), std::string::npos) << m;
    EXPECT_NE(m.find("tensor model.layers.0.self_attn.k_proj.weight "),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("stays " + good), std::string::npos) << m;
  }
  EXPECT_EQ(LatestCheckpoint(root), good);
  EXPECT_EQ(ReadFile(root + "/latest"), "step_00000001\n");
  EXPECT_EQ(ListCheckpoints(root), std::vector<std::string>{good});
  for (const auto& entry : fs::directory_iterator(root)) {
    EXPECT_EQ(entry.path().filename().string().find("step_00000002"),
              std::string::npos)
        << "something of the refused checkpoint was written";
  }
  EXPECT_EQ(FirstNonFiniteTensor(
                {{"a", torch::ones({2})}, {"b", torch::full({2}, INFINITY)}}),
            "b");
  EXPECT_EQ(FirstNonFiniteTensor({{"a", torch::ones({2})}}), "");
}

// --resume's fallback: newer checkpoints that fail their checks (a corrupted
// file, a deleted manifest) are skipped, each with its reason, and the newest
// good one is taken; with none good, each refusal is reported.
TEST(CheckpointTest, LatestValidCheckpointSkipsDamagedNewerOnes) {
  const std::string root = FreshDir("ckpt_fallback");
  const std::string good = WriteCheckpoint(root, 1, WritePayload, {});
  const std::string no_manifest = WriteCheckpoint(root, 2, WritePayload, {});
  const std::string corrupt = WriteCheckpoint(root, 3, WritePayload, {});
  fs::remove(no_manifest + "/manifest.json");
  {
    std::fstream f(corrupt + "/model/model.safetensors",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(17);
    f.put('X');
  }
  std::vector<std::string> skipped;
  EXPECT_EQ(LatestValidCheckpoint(root, &skipped), good);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[0].rfind("checkpoint " + corrupt +
                                 ": file model/model.safetensors fails its "
                                 "CRC-32C check",
                             0),
            0u)
      << skipped[0];
  EXPECT_EQ(
      skipped[1].rfind("checkpoint " + no_manifest + ": no manifest.json", 0),
      0u)
      << skipped[1];
  fs::remove(good + "/optimizer.bin");
  skipped.clear();
  EXPECT_EQ(LatestValidCheckpoint(root, &skipped), "");
  ASSERT_EQ(skipped.size(), 3u);
  EXPECT_NE(skipped[2].find(good + ": file optimizer.bin is missing"),
            std::string::npos)
      << skipped[2];
  EXPECT_EQ(LatestValidCheckpoint(FreshDir("ckpt_fallback_none"), nullptr), "");
}

// What a crash mid-write leaves (the temporary folder of WriteCheckpoint, the
// staging folder of a sharded write) is removed; checkpoints, even one that
// fails its checks, and anything else are not.
TEST(CheckpointTest, StaleTemporaryFoldersAreRemovedAndCheckpointsKept) {
  const std::string root = FreshDir("ckpt_stale_tmp");
  const std::string good = WriteCheckpoint(root, 5, WritePayload, {});
  EXPECT_THROW(WriteCheckpoint(root, 6,
                               [](const std::string& dir) {
                                 WritePayload(dir);
                                 throw IoError("killed (simulated)");
                               },
                               {}),
               IoError);
  WritePayload(root + "/step_00000007.tmp-123");
  MakeDirectories(root + "/step_00000008.ranks/rank_00001");
  WritePayload(root + "/step_00000009");  // no manifest: refused, not ours
  MakeDirectories(root + "/notes.tmp-1");
  const std::vector<std::string> removed = RemoveStaleCheckpointTemps(root);
  EXPECT_EQ(removed, (std::vector<std::string>{
                         root + "/step_00000006.tmp-" +
                             std::to_string(static_cast<long>(::getpid())),
                         root + "/step_00000007.tmp-123",
                         root + "/step_00000008.ranks"}));
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(root)) {
    left.push_back(entry.path().filename().string());
  }
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"latest", "notes.tmp-1",
                                            "step_00000005", "step_00000009"}));
  EXPECT_NO_THROW(OpenCheckpoint(good));
  EXPECT_TRUE(RemoveStaleCheckpointTemps(root).empty());
}

}  // namespace
}  // namespace clinrl::trainer
