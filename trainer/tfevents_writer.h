// TensorBoard event files (`events.out.tfevents.*`) written without
// TensorFlow: TFRecord framing (length, masked CRC-32C of the length, data,
// masked CRC-32C of the data) around hand-encoded `Event` protos holding
// scalar summaries, and the run config as a text summary. TensorBoard reads
// the file while it grows; Flush() makes what was written visible.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

namespace clinrl::trainer {

class TfEventsWriter {
 public:
  // Creates `dir/events.out.tfevents.<unix time>.<host>.clinrl` and writes
  // the file_version event. `flush_every_s` bounds how stale the file is.
  explicit TfEventsWriter(const std::string& dir, double flush_every_s = 30.0);
  ~TfEventsWriter();
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  void AddScalar(const std::string& tag, double value, int64_t step);
  // All metrics of one step in one event; non-finite values are skipped.
  void AddScalars(const std::map<std::string, double>& values, int64_t step);
  // A text summary (TensorBoard's text plugin), e.g. the run config.
  void AddText(const std::string& tag, const std::string& text, int64_t step);
  void Flush();
  const std::string& path() const { return path_; }

  // The encodings, exposed for tests.
  static std::string EncodeScalarEvent(
      double wall_time, int64_t step,
      const std::map<std::string, double>& values);
  static std::string FrameRecord(const std::string& data);

 private:
  void WriteRecord(const std::string& data);
  std::string path_;
  std::FILE* file_ = nullptr;
  double flush_every_s_;
  double last_flush_s_;
};

}  // namespace clinrl::trainer
