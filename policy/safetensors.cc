#include "policy/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/atomic_file.h"
#include "core/error.h"

namespace clinrl::policy {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) {
        throw NotFound(
            fmt::format("safetensors file '{}' does not exist", path));
      }
      CLINRL_CHECK_ERRNO(false, "open", "opening safetensors file '{}'", path);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      CLINRL_CHECK_ERRNO(false, "fstat", "size of '{}'", path);
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        CLINRL_CHECK_ERRNO(false, "mmap", "mapping '{}' ({} bytes)", path,
                           size_);
      }
      data_ = static_cast<const uint8_t*>(p);
    }
    CLINRL_CHECK_ERRNO(::close(fd) == 0, "close", "closing '{}'", path);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

at::ScalarType SafetensorsDtype(const std::string& name,
                                const std::string& what) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"F32", at::kFloat},  {"F16", at::kHalf}, {"BF16", at::kBFloat16},
      {"F64", at::kDouble}, {"I64", at::kLong}, {"I32", at::kInt},
      {"I16", at::kShort},  {"I8", at::kChar},  {"U8", at::kByte},
      {"BOOL", at::kBool}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) {
    throw BadRequest(fmt::format(
        "{}: dtype '{}' is not supported; expected one of F32, F16, BF16, F64, "
        "I64, I32, I16, I8, U8, BOOL",
        what, name));
  }
  return it->second;
}

std::string SafetensorsDtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return "F32";
    case at::kHalf:
      return "F16";
    case at::kBFloat16:
      return "BF16";
    case at::kDouble:
      return "F64";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kShort:
      return "I16";
    case at::kChar:
      return "I8";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
    default:
      throw BadRequest(fmt::format("tensor dtype {} has no safetensors name",
                                   c10::toString(type)));
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : path_(path), map_(std::make_shared<MappedFile>(path)) {
  const size_t size = map_->size();
  if (size < 8) {
    throw BadRequest(fmt::format(
        "'{}': {} bytes is too short for a safetensors file (8-byte header "
        "length expected)",
        path, size));
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, map_->data(), 8);  // little-endian, as on x86/arm
  if (header_len > size - 8) {
    throw BadRequest(
        fmt::format("'{}': header length {} exceeds the file size {}", path,
                    header_len, size));
  }
  nlohmann::json header;
  try {
    header =
        nlohmann::json::parse(map_->data() + 8, map_->data() + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw BadRequest(
        fmt::format("'{}': header is not valid JSON: {}", path, e.what()));
  }
  if (!header.is_object()) {
    throw BadRequest(fmt::format("'{}': header is not a JSON object", path));
  }
  data_ = map_->data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      metadata_ = v;
      continue;
    }
    const std::string where = fmt::format("'{}': tensor '{}'", path, name);
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2) {
      throw BadRequest(fmt::format(
          "{}: expected {{dtype, shape, data_offsets: [begin, end]}}, got {}",
          where, v.dump()));
    }
    TensorEntry e;
    e.dtype = v["dtype"].get<std::string>();
    e.shape = v["shape"].get<std::vector<int64_t>>();
    e.begin = v["data_offsets"][0].get<uint64_t>();
    e.end = v["data_offsets"][1].get<uint64_t>();
    const auto type = SafetensorsDtype(e.dtype, where);
    uint64_t numel = 1;
    for (int64_t d : e.shape) {
      if (d < 0) {
        throw BadRequest(fmt::format("{}: negative dimension {}", where, d));
      }
      numel *= static_cast<uint64_t>(d);
    }
    const uint64_t bytes = numel * c10::elementSize(type);
    if (e.end < e.begin || e.end > data_size || e.end - e.begin != bytes) {
      throw BadRequest(fmt::format(
          "{}: data_offsets [{}, {}] do not hold {} bytes of {} {} inside the "
          "{}-byte data section",
          where, e.begin, e.end, bytes, e.dtype, v["shape"].dump(), data_size));
    }
    entries_.emplace(name, std::move(e));
  }
}

std::vector<std::string> SafetensorsFile::Names() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& kv : entries_) names.push_back(kv.first);
  return names;
}

const TensorEntry& SafetensorsFile::Entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    throw NotFound(fmt::format("tensor '{}' is not in '{}'", name, path_));
  }
  return it->second;
}

at::Tensor SafetensorsFile::Get(const std::string& name) const {
  const TensorEntry& e = Entry(name);
  const auto type = SafetensorsDtype(e.dtype, name);
  // The deleter holds the mapping, so the view outlives this object safely.
  auto keep = map_;
  return torch::from_blob(
      const_cast<uint8_t*>(data_ + e.begin), e.shape, [keep](void*) {},
      torch::TensorOptions().dtype(type));
}

namespace {

class OutputFile {
 public:
  explicit OutputFile(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "wb");
    CLINRL_CHECK_ERRNO(file_ != nullptr, "fopen", "creating '{}'", path);
  }
  ~OutputFile() {
    if (file_ != nullptr) std::fclose(file_);
  }
  void Write(const void* data, size_t n) {
    if (n == 0) return;
    CLINRL_CHECK_ERRNO(std::fwrite(data, 1, n, file_) == n, "fwrite",
                       "writing {} bytes to '{}'", n, path_);
  }
  void Close() {
    CLINRL_CHECK_ERRNO(std::fflush(file_) == 0, "fflush", "'{}'", path_);
    CLINRL_CHECK_ERRNO(::fsync(::fileno(file_)) == 0, "fsync", "'{}'", path_);
    FILE* f = file_;
    file_ = nullptr;
    CLINRL_CHECK_ERRNO(std::fclose(f) == 0, "fclose", "'{}'", path_);
  }

 private:
  std::string path_;
  FILE* file_ = nullptr;
};

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

void SaveSafetensors(
    const std::string& path,
    const std::vector<std::pair<std::string, at::Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, at::Tensor>> sorted;
  sorted.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) {
      throw BadRequest(fmt::format("tensor '{}' is undefined", name));
    }
    sorted.emplace_back(name, t.detach().to(torch::kCPU).contiguous());
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].first == sorted[i - 1].first) {
      throw BadRequest(
          fmt::format("tensor name '{}' appears twice", sorted[i].first));
    }
  }
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    const uint64_t bytes = t.numel() * t.element_size();
    header[name] = {{"dtype", SafetensorsDtypeName(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces to 8 bytes, as the reference writer does, so the data
  // section stays aligned for every dtype.
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_len = text.size();

  const std::string tmp = path + ".tmp";
  {
    OutputFile out(tmp);
    out.Write(&header_len, 8);
    out.Write(text.data(), text.size());
    for (const auto& kv : sorted) {
      out.Write(kv.second.data_ptr(),
                kv.second.numel() * kv.second.element_size());
    }
    out.Close();
  }
  CLINRL_CHECK_ERRNO(std::rename(tmp.c_str(), path.c_str()) == 0, "rename",
                     "'{}' -> '{}'", tmp, path);
  SyncDirectory(DirectoryOf(path));
}

namespace {
constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}
}  // namespace

CheckpointReader::CheckpointReader(const std::string& dir) : dir_(dir) {
  const std::string index_path = dir + "/" + kIndexFile;
  if (FileExists(index_path)) {
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(ReadFile(index_path));
    } catch (const nlohmann::json::exception& e) {
      throw BadRequest(
          fmt::format("'{}' is not valid JSON: {}", index_path, e.what()));
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw BadRequest(fmt::format(
          "'{}': field weight_map is missing or not an object", index_path));
    }
    std::map<std::string, size_t> shard_index;
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) {
        throw BadRequest(
            fmt::format("'{}': weight_map.{}: expected a file name, got {}",
                        index_path, name, file.dump()));
      }
      const std::string shard = file.get<std::string>();
      auto it = shard_index.find(shard);
      if (it == shard_index.end()) {
        files_.push_back(std::make_unique<SafetensorsFile>(dir + "/" + shard));
        it = shard_index.emplace(shard, files_.size() - 1).first;
      }
      if (!files_[it->second]->Has(name)) {
        throw NotFound(
            fmt::format("'{}' maps tensor '{}' to '{}', which does not hold it",
                        index_path, name, shard));
      }
      owner_[name] = it->second;
    }
    return;
  }
  const std::string single = dir + "/" + kSingleFile;
  if (!FileExists(single)) {
    throw NotFound(fmt::format("model folder '{}' has neither {} nor {}", dir,
                               kSingleFile, kIndexFile));
  }
  files_.push_back(std::make_unique<SafetensorsFile>(single));
  for (const auto& name : files_[0]->Names()) owner_[name] = 0;
}

std::vector<std::string> CheckpointReader::Names() const {
  std::vector<std::string> names;
  for (const auto& kv : owner_) names.push_back(kv.first);
  return names;
}

bool CheckpointReader::Has(const std::string& name) const {
  return owner_.count(name) > 0;
}

const SafetensorsFile& CheckpointReader::FileOf(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) {
    throw NotFound(
        fmt::format("tensor '{}' is missing from the checkpoint "
                    "in '{}'",
                    name, dir_));
  }
  return *files_[it->second];
}

at::Tensor CheckpointReader::Get(const std::string& name) const {
  return FileOf(name).Get(name);
}

const TensorEntry& CheckpointReader::Entry(const std::string& name) const {
  return FileOf(name).Entry(name);
}

void SaveCheckpoint(
    const std::string& dir,
    const std::vector<std::pair<std::string, at::Tensor>>& tensors,
    int64_t max_shard_bytes) {
  MakeDirectories(dir);
  int64_t total = 0;
  for (const auto& kv : tensors) {
    total += kv.second.numel() * kv.second.element_size();
  }
  if (max_shard_bytes <= 0 || total <= max_shard_bytes) {
    SaveSafetensors(dir + "/" + kSingleFile, tensors);
    return;
  }
  // Greedy packing in name order, as transformers' save_pretrained does.
  std::vector<std::pair<std::string, at::Tensor>> sorted = tensors;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> shards(1);
  int64_t in_shard = 0;
  for (auto& kv : sorted) {
    const int64_t bytes = kv.second.numel() * kv.second.element_size();
    if (!shards.back().empty() && in_shard + bytes > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(kv);
    in_shard += bytes;
  }
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file =
        fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, shards.size());
    SaveSafetensors(dir + "/" + file, shards[i]);
    for (const auto& kv : shards[i]) weight_map[kv.first] = file;
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", weight_map}};
  WriteFileAtomic(dir + "/" + kIndexFile, index.dump(2) + "\n");
}

}  // namespace clinrl::policy
