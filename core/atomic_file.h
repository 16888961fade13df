// Crash-safe file writes: the content goes to a temporary file in the same
// folder, is fsynced, then renamed over the target and the folder fsynced, so
// a reader sees either the old file or the whole new one, never a torn write.
#pragma once

#include <string>
#include <string_view>

namespace clinrl {

void WriteFileAtomic(const std::string& path, std::string_view content);
// Reads a whole file; throws IoError naming the path.
std::string ReadFile(const std::string& path);
// fsync of a folder, so that a rename or create inside it is durable.
void SyncDirectory(const std::string& dir);
// mkdir -p; throws IoError naming the path.
void MakeDirectories(const std::string& dir);

}  // namespace clinrl
