#include "trainer/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/log.h"
#include "distributed/communicator.h"
#include "trainer/non_finite.h"

namespace clinrl::trainer {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = "manifest.json";
constexpr const char* kStepPrefix = "step_";

std::string StepFolderName(int64_t step) {
  return fmt::format("{}{:08d}", kStepPrefix, step);
}

struct FileDigest {
  uint64_t size = 0;
  uint32_t crc = 0;
};

FileDigest DigestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open {} for reading", path));
  FileDigest d;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    d.crc = Crc32c(buffer.data(), static_cast<size_t>(n), d.crc);
    d.size += static_cast<uint64_t>(n);
  }
  if (in.bad()) throw IoError(fmt::format("error reading {}", path));
  return d;
}

// fsync of one file, so the manifest never describes bytes still in cache.
void SyncFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  CLINRL_CHECK_ERRNO(f != nullptr, "fopen", "syncing {}", path);
  const int rc = ::fsync(fileno(f));
  std::fclose(f);
  CLINRL_CHECK_ERRNO(rc == 0, "fsync", "syncing {}", path);
}

bool ParseStep(const std::string& name, int64_t* step) {
  if (name.rfind(kStepPrefix, 0) != 0) return false;
  const std::string digits =
      name.substr(std::char_traits<char>::length(kStepPrefix));
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) {
    return false;
  }
  *step = std::stoll(digits);
  return true;
}

// Step folders under `checkpoints_dir`, oldest first; with
// `require_manifest`, only those holding a manifest.
std::vector<std::string> StepFolders(const std::string& checkpoints_dir,
                                     bool require_manifest) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(checkpoints_dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    int64_t step = 0;
    if (entry.is_directory() &&
        ParseStep(entry.path().filename().string(), &step) &&
        (!require_manifest || fs::exists(entry.path() / kManifest))) {
      found.emplace_back(step, entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

// The temporary names of unfinished writes: step_NNNNNNNN.tmp-PID
// (WriteCheckpoint) and step_NNNNNNNN.ranks (WriteShardedCheckpoint).
bool IsCheckpointTemp(const std::string& name) {
  const size_t dot = name.find('.');
  int64_t step = 0;
  if (dot == std::string::npos || !ParseStep(name.substr(0, dot), &step)) {
    return false;
  }
  const std::string suffix = name.substr(dot);
  if (suffix == ".ranks") return true;
  constexpr const char* kTmp = ".tmp-";
  const size_t n = std::char_traits<char>::length(kTmp);
  return suffix.size() > n && suffix.compare(0, n, kTmp) == 0 &&
         std::all_of(suffix.begin() + static_cast<std::ptrdiff_t>(n),
                     suffix.end(), ::isdigit);
}

}  // namespace

std::string WriteCheckpoint(
    const std::string& checkpoints_dir, int64_t step,
    const std::function<void(const std::string& dir)>& write_files,
    const json& state) {
  MakeDirectories(checkpoints_dir);
  const std::string final_dir = checkpoints_dir + "/" + StepFolderName(step);
  const std::string tmp_dir =
      fmt::format("{}.tmp-{}", final_dir, static_cast<long>(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp_dir, ec);
  MakeDirectories(tmp_dir);
  write_files(tmp_dir);

  json files = json::object();
  std::vector<std::string> dirs = {tmp_dir};
  for (const auto& entry : fs::recursive_directory_iterator(tmp_dir)) {
    if (entry.is_directory()) {
      dirs.push_back(entry.path().string());
      continue;
    }
    if (!entry.is_regular_file()) continue;
    const std::string rel = fs::relative(entry.path(), tmp_dir).string();
    SyncFile(entry.path().string());
    const FileDigest d = DigestFile(entry.path().string());
    files[rel] = {{"size", d.size}, {"crc32c", d.crc}};
  }
  for (const auto& d : dirs) SyncDirectory(d);
  const json manifest = {{"format", "clinrl-checkpoint-1"},
                         {"step", step},
                         {"files", files},
                         {"state", state}};
  WriteFileAtomic(tmp_dir + "/" + kManifest, manifest.dump(2) + "\n");

  if (fs::exists(final_dir)) fs::remove_all(final_dir);
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) {
    throw IoError(fmt::format("cannot rename {} to {}: {}", tmp_dir, final_dir,
                              ec.message()));
  }
  SyncDirectory(checkpoints_dir);
  WriteFileAtomic(checkpoints_dir + "/latest", StepFolderName(step) + "\n");
  return final_dir;
}

void RequireFiniteCheckpoint(
    const std::string& checkpoints_dir, int64_t step,
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  const std::string bad = FirstNonFiniteTensor(tensors);
  if (bad.empty()) return;
  const std::string latest = LatestCheckpoint(checkpoints_dir);
  throw NonFiniteError(fmt::format(
      "checkpoint {}: tensor {} holds NaN or infinite values; refusing to "
      "write it. The newest checkpoint stays {}",
      StepFolderName(step), bad,
      latest.empty() ? std::string("(none: no checkpoint written yet)")
                     : latest));
}

std::string WriteShardedCheckpoint(
    distributed::Communicator& comm, const std::string& checkpoints_dir,
    int64_t step,
    const std::function<void(const std::string& dir)>& write_files,
    const std::function<void(const std::string& dir)>& write_rank_files,
    const json& state) {
  // Not a step folder name (ParseStep refuses the suffix), so an interrupted
  // write is never taken for a checkpoint.
  const std::string staging =
      checkpoints_dir + "/" + StepFolderName(step) + ".ranks";
  if (comm.rank() == 0) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    MakeDirectories(staging);
  }
  comm.Barrier();
  const std::string rank_dir =
      fmt::format("{}/rank_{:05d}", staging, comm.rank());
  MakeDirectories(rank_dir);
  write_rank_files(rank_dir);
  comm.Barrier();
  std::string final_dir;
  if (comm.rank() == 0) {
    final_dir = WriteCheckpoint(
        checkpoints_dir, step,
        [&](const std::string& dir) {
          write_files(dir);
          for (const auto& rank : fs::directory_iterator(staging)) {
            for (const auto& file : fs::directory_iterator(rank.path())) {
              const fs::path target = fs::path(dir) / file.path().filename();
              if (fs::exists(target)) {
                throw IoError(
                    fmt::format("sharded checkpoint {}: two ranks wrote {}",
                                dir, file.path().filename().string()));
              }
              std::error_code ec;
              fs::rename(file.path(), target, ec);
              if (ec) {
                throw IoError(fmt::format("cannot move {} to {}: {}",
                                          file.path().string(), target.string(),
                                          ec.message()));
              }
            }
          }
        },
        state);
    std::error_code ec;
    fs::remove_all(staging, ec);
  }
  comm.BroadcastBytes(final_dir, 0);
  return final_dir;
}

CheckpointInfo OpenCheckpoint(const std::string& dir) {
  const std::string manifest_path = dir + "/" + kManifest;
  if (!fs::exists(manifest_path)) {
    throw IoError(fmt::format(
        "checkpoint {}: no {} (an interrupted write?); refusing to load it",
        dir, kManifest));
  }
  json manifest = json::parse(ReadFile(manifest_path), nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object() ||
      !manifest.contains("files") || !manifest["files"].is_object() ||
      !manifest.contains("step")) {
    throw IoError(fmt::format("checkpoint {}: {} is not a valid manifest", dir,
                              kManifest));
  }
  for (auto it = manifest["files"].begin(); it != manifest["files"].end();
       ++it) {
    const std::string path = dir + "/" + it.key();
    if (!fs::exists(path)) {
      throw IoError(
          fmt::format("checkpoint {}: file {} is missing", dir, it.key()));
    }
    const FileDigest d = DigestFile(path);
    const uint64_t want_size = it.value().value("size", uint64_t{0});
    const uint32_t want_crc = it.value().value("crc32c", uint32_t{0});
    if (d.size != want_size) {
      throw IoError(fmt::format(
          "checkpoint {}: file {} has {} bytes, the manifest says {} "
          "(truncated?); refusing to load it",
          dir, it.key(), d.size, want_size));
    }
    if (d.crc != want_crc) {
      throw IoError(fmt::format(
          "checkpoint {}: file {} fails its CRC-32C check ({:08x}, expected "
          "{:08x}): corrupted; refusing to load it",
          dir, it.key(), d.crc, want_crc));
    }
  }
  CheckpointInfo info;
  info.dir = dir;
  info.step = manifest["step"].get<int64_t>();
  info.state = manifest.value("state", json::object());
  return info;
}

std::vector<std::string> ListCheckpoints(const std::string& checkpoints_dir) {
  return StepFolders(checkpoints_dir, /*require_manifest=*/true);
}

std::string LatestCheckpoint(const std::string& checkpoints_dir) {
  const auto all = ListCheckpoints(checkpoints_dir);
  return all.empty() ? "" : all.back();
}

std::string LatestValidCheckpoint(const std::string& checkpoints_dir,
                                  std::vector<std::string>* skipped) {
  const auto all = StepFolders(checkpoints_dir, /*require_manifest=*/false);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    std::string why;
    try {
      OpenCheckpoint(*it);
      return *it;
    } catch (const IoError& e) {
      why = e.what();
    } catch (const json::exception& e) {
      // A manifest that parses but holds the wrong types (a "step" string).
      why = fmt::format("checkpoint {}: {} is not a valid manifest: {}", *it,
                        kManifest, e.what());
    }
    if (skipped) skipped->push_back(std::move(why));
  }
  return "";
}

std::vector<std::string> RemoveStaleCheckpointTemps(
    const std::string& checkpoints_dir) {
  std::vector<std::string> stale, removed;
  std::error_code ec;
  if (!fs::is_directory(checkpoints_dir, ec)) return removed;
  // Listed first, removed after: no deleting under a directory_iterator.
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    if (entry.is_directory() &&
        IsCheckpointTemp(entry.path().filename().string())) {
      stale.push_back(entry.path().string());
    }
  }
  std::sort(stale.begin(), stale.end());
  for (const auto& path : stale) {
    fs::remove_all(path, ec);
    if (ec) {
      CLINRL_LOG_WARN(
          "could not remove {}, left by an unfinished checkpoint "
          "write: {}",
          path, ec.message());
      continue;
    }
    CLINRL_LOG_INFO(
        "removed {}, left by a checkpoint write that never "
        "finished",
        path);
    removed.push_back(path);
  }
  return removed;
}

void PruneCheckpoints(const std::string& checkpoints_dir, int64_t keep) {
  CLINRL_CHECK(keep >= 1, "PruneCheckpoints: keep must be >= 1, got {}", keep);
  const auto all = ListCheckpoints(checkpoints_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    std::error_code ec;
    fs::remove_all(all[i], ec);
    if (ec) CLINRL_LOG_WARN("could not prune {}: {}", all[i], ec.message());
  }
}

}  // namespace clinrl::trainer
