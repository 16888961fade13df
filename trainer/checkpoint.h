// Crash-safe checkpoints. A checkpoint is a folder `step_NNNNNNNN/` holding
// whatever the learner writes (model folder, optimizer state, RNG streams)
// plus `manifest.json`, written last, with the size and CRC-32C of every
// file and the trainer state. The folder is built under a temporary name and
// renamed into place, so a crash mid-write leaves no folder that looks like a
// checkpoint; a file that changed after writing fails its CRC and the whole
// checkpoint is refused with an error naming the file.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace clinrl::distributed {
class Communicator;
}

namespace clinrl::trainer {

struct CheckpointInfo {
  std::string dir;  // the step folder
  int64_t step = 0;
  nlohmann::json state;  // the trainer state stored in the manifest
};

// Writes checkpoint `step` under `checkpoints_dir`: `write_files(tmp)` writes
// the payload into a temporary folder, then the manifest (with `state`) is
// written and fsynced, the folder renamed to step_NNNNNNNN and `latest`
// updated atomically. Returns the final folder.
std::string WriteCheckpoint(
    const std::string& checkpoints_dir, int64_t step,
    const std::function<void(const std::string& dir)>& write_files,
    const nlohmann::json& state);

// The data-parallel form of WriteCheckpoint; every rank of `comm` calls it.
// Each rank's `write_rank_files(dir)` writes that rank's files (its optimizer
// shard) into a staging folder next to the step folder; rank 0 then runs
// WriteCheckpoint with `write_files` and moves the staged files in before the
// manifest is written, so the manifest covers every rank's files and a crash
// at any point leaves no complete-looking checkpoint. The checkpoints folder
// must be shared by all ranks (one node, or a shared filesystem). Returns the
// step folder on every rank.
std::string WriteShardedCheckpoint(
    distributed::Communicator& comm, const std::string& checkpoints_dir,
    int64_t step,
    const std::function<void(const std::string& dir)>& write_files,
    const std::function<void(const std::string& dir)>& write_rank_files,
    const nlohmann::json& state);

// Refuses to checkpoint a diverged run: throws NonFiniteError
// (non_finite.h) naming step `step` and the first of `tensors` (the weights,
// moments... the checkpoint would store) that holds a NaN or an infinity,
// and the newest checkpoint under `checkpoints_dir`, which stays the newest.
// Call it before anything of the checkpoint is written (before the other
// learner ranks are asked to write their shards).
void RequireFiniteCheckpoint(
    const std::string& checkpoints_dir, int64_t step,
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

// Verifies every file of the manifest (present, same size, same CRC-32C) and
// returns the stored state. Throws IoError naming the checkpoint and the
// file for anything missing, truncated or corrupted.
CheckpointInfo OpenCheckpoint(const std::string& dir);

// The newest complete checkpoint folder under `checkpoints_dir`, or "" when
// there is none. Temporary folders of interrupted writes are ignored.
std::string LatestCheckpoint(const std::string& checkpoints_dir);

// --resume's choice: the newest step folder under `checkpoints_dir` that
// OpenCheckpoint accepts, or "" when none does. Every newer folder refused
// on the way is skipped and its refusal (an IoError message naming the folder
// and the file or manifest at fault) appended to `skipped` (may be null),
// newest first. Unlike LatestCheckpoint, a step folder without manifest.json
// is tried and refused: WriteCheckpoint renames a folder into place only
// after its manifest, so a missing manifest means damage, never a write in
// progress, and must not be passed over silently.
std::string LatestValidCheckpoint(const std::string& checkpoints_dir,
                                  std::vector<std::string>* skipped);

// Deletes the leftovers of checkpoint writes that never finished under
// `checkpoints_dir` (step_NNNNNNNN.tmp-PID folders of WriteCheckpoint,
// step_NNNNNNNN.ranks staging of WriteShardedCheckpoint), logging each one
// removed, and returns them. Never touches a step folder. Call it only while
// no checkpoint is being written there: at run start, after a write.
std::vector<std::string> RemoveStaleCheckpointTemps(
    const std::string& checkpoints_dir);

// Step folders under `checkpoints_dir`, oldest first.
std::vector<std::string> ListCheckpoints(const std::string& checkpoints_dir);

// Deletes all but the newest `keep` checkpoints (keep >= 1).
void PruneCheckpoints(const std::string& checkpoints_dir, int64_t keep);

}  // namespace clinrl::trainer
