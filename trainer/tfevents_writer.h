// TensorBoard event files (`events.out.tfevents.*`) written without
// TensorFlow: TFRecord framing (length, masked CRC-32C of the length, data,
// masked CRC-32C of the data) around hand-encoded `Event` protos holding
// scalar summaries, and the run config as a text summary. TensorBoard reads
// the file while it grows; a background thread flushes it every
// `flush_every_s` so a slow step never leaves finished metrics invisible.
//
// Metric keys of metrics.jsonl become TensorBoard tags through TagForMetric:
// the same key always gives the same tag, so curves of resumed or compared
// runs line up.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace clinrl::trainer {

class TfEventsWriter {
 public:
  // Creates `dir/events.out.tfevents.<unix time>.<host>.clinrl` and writes
  // the file_version event. `flush_every_s` bounds how stale the file is:
  // an event reaches the file at most that long after it was added.
  explicit TfEventsWriter(const std::string& dir, double flush_every_s = 30.0);
  ~TfEventsWriter();
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  // `tag` and the keys of `values` are metric keys (metrics.jsonl names);
  // they are written under TagForMetric(key).
  void AddScalar(const std::string& tag, double value, int64_t step);
  // All metrics of one step in one event; non-finite values are skipped.
  void AddScalars(const std::map<std::string, double>& values, int64_t step);
  // A text summary (TensorBoard's text plugin), e.g. the run config. The
  // plugin renders Markdown, which would run an indented JSON config into
  // one paragraph: multi-line text is written as a Markdown code block
  // (every line indented four spaces), which JSON readers still parse.
  void AddText(const std::string& tag, const std::string& text, int64_t step);
  void Flush();
  const std::string& path() const { return path_; }

  // The TensorBoard tag of a metrics.jsonl key: the batch reward mean is
  // `reward/total` (and its spread `reward/total_std`), also under
  // `eval/<split>/`; characters TensorBoard does not allow in tags
  // (anything but letters, digits, `_ . / -`) become `_`. Other keys keep
  // their name: `kl`, `entropy`, `clip_frac/low`, `reward/<component>`, ...
  static std::string TagForMetric(const std::string& key);

  // The encodings, exposed for tests.
  static std::string EncodeScalarEvent(
      double wall_time, int64_t step,
      const std::map<std::string, double>& values);
  static std::string FrameRecord(const std::string& data);

 private:
  void WriteRecord(const std::string& data);
  void FlushLocked();
  void FlushLoop();

  std::string path_;
  std::FILE* file_ = nullptr;
  double flush_every_s_;
  std::mutex mu_;  // guards file_, dirty_ and stop_
  std::condition_variable wake_;
  bool dirty_ = false;  // written since the last flush
  bool stop_ = false;
  std::thread flusher_;
};

}  // namespace clinrl::trainer
