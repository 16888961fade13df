// safetensors: bit-exact round trips for every float type, the on-disk
// layout of the reference writer, shards, and errors that name the tensor.
#include "policy/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <limits>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

using testing::TempDir;

bool SameBytes(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) {
    return false;
  }
  const auto ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(),
                     ac.numel() * ac.element_size()) == 0;
}

std::vector<std::pair<std::string, at::Tensor>> SampleTensors() {
  auto gen = at::detail::createCPUGenerator(3);
  torch::Tensor f32 = torch::randn({5, 7}, gen);
  const float inf = std::numeric_limits<float>::infinity();
  f32[0][0] = std::numeric_limits<float>::quiet_NaN();
  f32[0][1] = inf;
  f32[0][2] = -inf;
  f32[0][3] = -0.0f;
  f32[0][4] = std::numeric_limits<float>::denorm_min();
  return {{"w.f32", f32},
          {"w.f16", torch::randn({3, 4}, gen).to(torch::kHalf)},
          {"w.bf16", torch::randn({2, 3, 4}, gen).to(torch::kBFloat16)},
          {"a.i64", torch::arange(-5, 6, torch::kLong)},
          {"scalar", torch::tensor(2.5f).reshape({})},
          {"empty", torch::zeros({0, 3})}};
}

TEST(SafetensorsTest, RoundTripIsBitExact) {
  TempDir dir;
  const auto tensors = SampleTensors();
  SaveSafetensors(dir.path() + "/t.safetensors", tensors);
  SafetensorsFile file(dir.path() + "/t.safetensors");
  EXPECT_EQ(file.Names().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    EXPECT_TRUE(SameBytes(file.Get(name), t)) << name;
  }
  EXPECT_EQ(file.Entry("w.bf16").dtype, "BF16");
  EXPECT_EQ(file.Entry("w.f16").dtype, "F16");
  EXPECT_EQ(file.metadata()["format"], "pt");
}

TEST(SafetensorsTest, LayoutMatchesTheReferenceWriter) {
  TempDir dir;
  SaveSafetensors(dir.path() + "/t.safetensors", SampleTensors());
  const std::string bytes = ReadFile(dir.path() + "/t.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);  // data section stays 8-byte aligned
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  uint64_t expect_begin = 0;
  std::string previous;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") continue;
    EXPECT_EQ(v["data_offsets"][0].get<uint64_t>(), 0 + expect_begin)
        << "tensors are packed in name order";
    expect_begin = v["data_offsets"][1].get<uint64_t>();
  }
  EXPECT_EQ(8 + n + expect_begin, bytes.size());
  EXPECT_EQ(header["w.f32"]["shape"], nlohmann::json({5, 7}));
}

TEST(SafetensorsTest, TensorsOutliveTheFileObject) {
  TempDir dir;
  SaveSafetensors(dir.path() + "/t.safetensors", SampleTensors());
  torch::Tensor kept;
  {
    SafetensorsFile file(dir.path() + "/t.safetensors");
    kept = file.Get("a.i64");
  }
  EXPECT_EQ(kept[10].item<int64_t>(), 5);
}

TEST(SafetensorsTest, ShardedCheckpointReadsLikeOneFile) {
  TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (int i = 0; i < 6; ++i) {
    tensors.emplace_back(fmt::format("layer.{}.weight", i),
                         torch::full({16, 16}, float(i)));
  }
  SaveCheckpoint(dir.path(), tensors, 2 * 16 * 16 * 4);
  const auto index = nlohmann::json::parse(
      ReadFile(dir.path() + "/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 6 * 16 * 16 * 4);
  EXPECT_EQ(index["weight_map"]["layer.5.weight"],
            "model-00003-of-00003.safetensors");
  CheckpointReader reader(dir.path());
  EXPECT_EQ(reader.Names().size(), 6u);
  for (const auto& [name, t] : tensors) {
    EXPECT_TRUE(SameBytes(reader.Get(name), t)) << name;
  }
  try {
    reader.Get("layer.9.weight");
    FAIL();
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("layer.9.weight"), std::string::npos);
  }
}

TEST(SafetensorsTest, CorruptFilesGiveClearErrors) {
  TempDir dir;
  const std::string path = dir.path() + "/t.safetensors";
  SaveSafetensors(path, SampleTensors());
  const std::string bytes = ReadFile(path);
  WriteFileAtomic(path, bytes.substr(0, bytes.size() - 4));  // truncated
  try {
    SafetensorsFile f(path);
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("data_offsets"), std::string::npos)
        << e.what();
  }
  WriteFileAtomic(path, std::string("\xff\xff\xff\xff\0\0\0\0{}", 10));
  EXPECT_THROW(SafetensorsFile f(path), BadRequest);
  WriteFileAtomic(path, std::string("\x02\0\0\0\0\0\0\0{x", 10));
  EXPECT_THROW(SafetensorsFile f(path), BadRequest);
  EXPECT_THROW(SafetensorsFile f(dir.path() + "/missing.safetensors"),
               NotFound);
  EXPECT_THROW(CheckpointReader r(dir.path() + "/nowhere"), NotFound);
}

}  // namespace
}  // namespace clinrl::policy
