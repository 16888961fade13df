// safetensors checkpoints: read memory-mapped (a tensor is a view of the
// mapped file until it is copied into a parameter), written with the header
// layout that the Python `safetensors` package writes, and sharded with a
// Hugging Face `model.safetensors.index.json`.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace clinrl::policy {

struct TensorEntry {
  std::string dtype;  // safetensors name: F32, F16, BF16, I64, ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
};

class MappedFile;

// One .safetensors file, mapped read-only for as long as this object or any
// tensor it returned lives.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  std::vector<std::string> Names() const;
  bool Has(const std::string& name) const { return entries_.count(name) > 0; }
  const TensorEntry& Entry(const std::string& name) const;
  // A CPU tensor viewing the mapped bytes (no copy); throws NotFound naming
  // the tensor and the file.
  at::Tensor Get(const std::string& name) const;
  const nlohmann::json& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, TensorEntry> entries_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

// Writes `tensors` (any of F32/F16/BF16/I64/I32/U8/BOOL dtypes, any device)
// to `path` atomically, names sorted as the Python writer sorts them.
void SaveSafetensors(
    const std::string& path,
    const std::vector<std::pair<std::string, at::Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// The tensors of a model folder: `model.safetensors`, or the shards named by
// `model.safetensors.index.json`.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& dir);
  std::vector<std::string> Names() const;
  bool Has(const std::string& name) const;
  at::Tensor Get(const std::string& name) const;
  const TensorEntry& Entry(const std::string& name) const;

 private:
  const SafetensorsFile& FileOf(const std::string& name) const;
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index in files_
};

// Writes tensors into `dir` as one `model.safetensors`, or, when their total
// size exceeds `max_shard_bytes` (> 0), as `model-0000i-of-0000n.safetensors`
// shards plus `model.safetensors.index.json`.
void SaveCheckpoint(
    const std::string& dir,
    const std::vector<std::pair<std::string, at::Tensor>>& tensors,
    int64_t max_shard_bytes = 0);

// safetensors dtype name <-> torch dtype; throws BadRequest naming `what`.
at::ScalarType SafetensorsDtype(const std::string& name,
                                const std::string& what);
std::string SafetensorsDtypeName(at::ScalarType type);

}  // namespace clinrl::policy
