// Streaming JSON Lines: one JSON value per line, appended and flushed line by
// line. A crash mid-write leaves at most one truncated last line; the reader
// skips it (and says so), and a writer reopening the file cuts it off before
// appending, so a torn record never glues onto the next one.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace clinrl {

class JsonlWriter {
 public:
  // Opens `path` for appending (creating it); a partial last line left by a
  // crash is truncated away first.
  explicit JsonlWriter(const std::string& path, bool fsync_each_line = false);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  // Writes one line and flushes it to the OS (and to disk when asked).
  void Write(const nlohmann::json& value);
  // fsync: everything written so far survives a power loss.
  void Sync();
  const std::string& path() const { return path_; }
  int64_t lines_written() const { return lines_written_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  bool fsync_each_line_;
  int64_t lines_written_ = 0;
};

struct JsonlReadStats {
  int64_t lines = 0;            // records delivered
  bool truncated_tail = false;  // a partial last line was skipped
  int64_t bad_lines = 0;        // lines skipped by BadJsonlLine::kSkip
};

// What a reader does with a line in the middle of a file that is not a JSON
// object: data that must be right (demonstrations, checkpoints' records)
// stops at it; a viewer (the report) skips it, warns with file and line,
// and counts it, so one damaged line does not hide a whole run.
enum class BadJsonlLine { kThrow, kSkip };

// Calls `on_record(value, line_number)` for each line. A last line that is not
// newline-terminated and does not parse is treated as a torn write and
// skipped; a bad line anywhere else throws IoError naming the file and line,
// or, with BadJsonlLine::kSkip, is skipped and counted.
JsonlReadStats ReadJsonl(
    const std::string& path,
    const std::function<void(const nlohmann::json&, int64_t)>& on_record,
    BadJsonlLine bad_line = BadJsonlLine::kThrow);

}  // namespace clinrl
