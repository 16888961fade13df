#include "core/jsonl.h"

#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "core/log.h"

namespace clinrl {

namespace {

// Returns the size of the file up to and including its last newline.
int64_t CompleteLinesSize(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return 0;
  const int64_t size = in.tellg();
  int64_t end = size;
  char c = 0;
  while (end > 0) {
    in.seekg(end - 1);
    in.get(c);
    if (c == '\n') break;
    --end;
  }
  return end;
}

}  // namespace

JsonlWriter::JsonlWriter(const std::string& path, bool fsync_each_line)
    : path_(path), fsync_each_line_(fsync_each_line) {
  if (::access(path.c_str(), F_OK) == 0) {
    std::ifstream probe(path, std::ios::binary | std::ios::ate);
    const int64_t size = probe ? static_cast<int64_t>(probe.tellg()) : 0;
    const int64_t keep = CompleteLinesSize(path);
    if (keep < size) {
      probe.seekg(keep);
      std::string tail(static_cast<size_t>(size - keep), '\0');
      probe.read(tail.data(), static_cast<std::streamsize>(tail.size()));
      if (nlohmann::json::accept(tail)) {
        // A whole record that only lacks its newline: keep it.
        std::FILE* f = std::fopen(path.c_str(), "ab");
        CLINRL_CHECK_ERRNO(f != nullptr, "fopen", "repairing {}", path);
        const bool ok = std::fputc('\n', f) != EOF;
        CLINRL_CHECK_ERRNO(std::fclose(f) == 0 && ok, "fputc", "repairing {}",
                           path);
      } else {
        CLINRL_LOG_WARN(
            "{}: cutting a torn last line of {} bytes before "
            "appending",
            path, size - keep);
        CLINRL_CHECK_ERRNO(::truncate(path.c_str(), keep) == 0, "truncate",
                           "repairing {}", path);
      }
    }
  }
  file_ = std::fopen(path.c_str(), "ab");
  CLINRL_CHECK_ERRNO(file_ != nullptr, "fopen", "opening {} for appending",
                     path);
}

JsonlWriter::~JsonlWriter() {
  if (file_) {
    std::fflush(file_);
    ::fsync(fileno(file_));
    std::fclose(file_);
  }
}

void JsonlWriter::Write(const nlohmann::json& value) {
  // The whole line goes out in one fwrite + fflush so a crash can only tear
  // the line being written, never an earlier one.
  std::string line =
      value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  CLINRL_CHECK_ERRNO(
      std::fwrite(line.data(), 1, line.size(), file_) == line.size(), "fwrite",
      "appending to {}", path_);
  CLINRL_CHECK_ERRNO(std::fflush(file_) == 0, "fflush", "appending to {}",
                     path_);
  if (fsync_each_line_) Sync();
  ++lines_written_;
}

void JsonlWriter::Sync() {
  CLINRL_CHECK_ERRNO(std::fflush(file_) == 0, "fflush", "syncing {}", path_);
  CLINRL_CHECK_ERRNO(::fsync(fileno(file_)) == 0, "fsync", "syncing {}", path_);
}

JsonlReadStats ReadJsonl(
    const std::string& path,
    const std::function<void(const nlohmann::json&, int64_t)>& on_record,
    BadJsonlLine bad_line) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open {} for reading", path));
  JsonlReadStats stats;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const bool terminated = !in.eof();
    if (line.empty()) continue;
    nlohmann::json value =
        nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      if (!terminated) {
        CLINRL_LOG_WARN("{}:{}: skipping a truncated last line ({} bytes)",
                        path, line_number, line.size());
        stats.truncated_tail = true;
        break;
      }
      if (bad_line == BadJsonlLine::kThrow) {
        throw IoError(fmt::format("{}:{}: not a JSON line: {}", path,
                                  line_number, line.substr(0, 80)));
      }
    }
    if (bad_line == BadJsonlLine::kSkip && !value.is_object()) {
      CLINRL_LOG_WARN("{}:{}: skipping a line that is not a JSON object: {}",
                      path, line_number, line.substr(0, 80));
      ++stats.bad_lines;
      continue;
    }
    on_record(value, line_number);
    ++stats.lines;
  }
  return stats;
}

}  // namespace clinrl
