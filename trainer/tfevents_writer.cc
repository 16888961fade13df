#include "trainer/tfevents_writer.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/log.h"

namespace clinrl::trainer {

namespace {

double WallTime() {
  return std::chrono::duration<double>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Minimal protobuf wire encoding: just what Event/Summary need.
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutTag(std::string* out, int field, int wire_type) {
  PutVarint(out, static_cast<uint64_t>(field) << 3 |
                     static_cast<uint64_t>(wire_type));
}
void PutBytes(std::string* out, int field, const std::string& bytes) {
  PutTag(out, field, 2);
  PutVarint(out, bytes.size());
  out->append(bytes);
}
void PutDouble(std::string* out, int field, double v) {
  PutTag(out, field, 1);
  char buf[8];
  std::memcpy(buf, &v, 8);  // little-endian on every target clinrl builds for
  out->append(buf, 8);
}
void PutFloat(std::string* out, int field, float v) {
  PutTag(out, field, 5);
  char buf[4];
  std::memcpy(buf, &v, 4);
  out->append(buf, 4);
}
void PutInt64(std::string* out, int field, int64_t v) {
  PutTag(out, field, 0);
  PutVarint(out, static_cast<uint64_t>(v));
}

// Event { double wall_time = 1; int64 step = 2; oneof { string file_version =
// 3;
//         Summary summary = 5; } }
std::string EventHeader(double wall_time, int64_t step) {
  std::string e;
  PutDouble(&e, 1, wall_time);
  PutInt64(&e, 2, step);
  return e;
}

}  // namespace

std::string TfEventsWriter::TagForMetric(const std::string& key) {
  static const std::map<std::string, std::string> kRenamed = {
      {"reward/mean", "reward/total"}, {"reward/std", "reward/total_std"}};
  std::string prefix;
  std::string metric = key;
  // eval/<split>/<metric>: the metric part is renamed like a training key.
  if (key.rfind("eval/", 0) == 0) {
    const size_t slash = key.find('/', 5);
    if (slash != std::string::npos) {
      prefix = key.substr(0, slash + 1);
      metric = key.substr(slash + 1);
    }
  }
  auto it = kRenamed.find(metric);
  std::string tag = prefix + (it == kRenamed.end() ? metric : it->second);
  for (char& c : tag) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                         c == '/' || c == '-';
    if (!allowed) c = '_';
  }
  return tag;
}

std::string TfEventsWriter::FrameRecord(const std::string& data) {
  std::string out;
  char len[8];
  const uint64_t n = data.size();
  std::memcpy(len, &n, 8);
  out.append(len, 8);
  const uint32_t len_crc = MaskCrc32c(Crc32c(len, 8));
  out.append(reinterpret_cast<const char*>(&len_crc), 4);
  out.append(data);
  const uint32_t data_crc = MaskCrc32c(Crc32c(data));
  out.append(reinterpret_cast<const char*>(&data_crc), 4);
  return out;
}

std::string TfEventsWriter::EncodeScalarEvent(
    double wall_time, int64_t step,
    const std::map<std::string, double>& values) {
  // Summary { repeated Value value = 1; }
  // Value { string tag = 1; float simple_value = 2; }
  std::string summary;
  for (const auto& [tag, v] : values) {
    if (!std::isfinite(v)) continue;
    std::string value;
    PutBytes(&value, 1, TagForMetric(tag));
    PutFloat(&value, 2, static_cast<float>(v));
    PutBytes(&summary, 1, value);
  }
  std::string event = EventHeader(wall_time, step);
  PutBytes(&event, 5, summary);
  return event;
}

TfEventsWriter::TfEventsWriter(const std::string& dir, double flush_every_s)
    : flush_every_s_(flush_every_s) {
  if (!(flush_every_s > 0)) {
    throw BadRequest(fmt::format(
        "flush_every_s: got {}, expected a positive number of seconds",
        flush_every_s));
  }
  char host[256] = "localhost";
  if (gethostname(host, sizeof host) != 0) std::strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  path_ = fmt::format("{}/events.out.tfevents.{}.{}.clinrl", dir,
                      static_cast<int64_t>(WallTime()), host);
  file_ = std::fopen(path_.c_str(), "ab");
  CLINRL_CHECK_ERRNO(file_ != nullptr, "fopen", "creating {}", path_);
  std::string event = EventHeader(WallTime(), 0);
  PutBytes(&event, 3, "brain.Event:2");
  WriteRecord(event);
  Flush();
  flusher_ = std::thread([this] { FlushLoop(); });
}

TfEventsWriter::~TfEventsWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  // A destructor must not throw: a failed final flush is logged instead.
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0) {
    CLINRL_LOG_WARN("tfevents: flushing {} failed: {}", path_,
                    std::strerror(errno));
  }
  if (std::fclose(file_) != 0) {
    CLINRL_LOG_WARN("tfevents: closing {} failed: {}", path_,
                    std::strerror(errno));
  }
}

void TfEventsWriter::FlushLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto period = std::chrono::duration<double>(flush_every_s_);
  while (!stop_) {
    wake_.wait_for(lock, period, [this] { return stop_; });
    if (stop_ || !dirty_) continue;
    // The training thread sees write errors on its next call; this thread
    // only logs, as an exception here would end the process.
    if (std::fflush(file_) != 0) {
      CLINRL_LOG_WARN("tfevents: flushing {} failed: {}", path_,
                      std::strerror(errno));
    } else {
      dirty_ = false;
    }
  }
}

void TfEventsWriter::WriteRecord(const std::string& data) {
  const std::string record = FrameRecord(data);
  std::lock_guard<std::mutex> lock(mu_);
  CLINRL_CHECK_ERRNO(
      std::fwrite(record.data(), 1, record.size(), file_) == record.size(),
      "fwrite", "writing {}", path_);
  dirty_ = true;
}

void TfEventsWriter::AddScalar(const std::string& tag, double value,
                               int64_t step) {
  AddScalars({{tag, value}}, step);
}

void TfEventsWriter::AddScalars(const std::map<std::string, double>& values,
                                int64_t step) {
  WriteRecord(EncodeScalarEvent(WallTime(), step, values));
}

void TfEventsWriter::AddText(const std::string& tag, const std::string& text,
                             int64_t step) {
  // Value { string tag = 1; SummaryMetadata metadata = 9; TensorProto tensor =
  // 8; } SummaryMetadata { PluginData plugin_data = 1; } PluginData { string
  // plugin_name = 1; } TensorProto { DataType dtype = 1 (DT_STRING = 7);
  // TensorShapeProto tensor_shape = 2;
  //               repeated bytes string_val = 8; }
  std::string plugin;
  PutBytes(&plugin, 1, "text");
  std::string metadata;
  PutBytes(&metadata, 1, plugin);
  std::string tensor;
  PutInt64(&tensor, 1, 7);
  PutBytes(&tensor, 2, "");
  std::string body = text;
  if (text.find('\n') != std::string::npos) {
    body = "    ";
    for (char c : text) {
      body += c;
      if (c == '\n') body += "    ";
    }
  }
  PutBytes(&tensor, 8, body);
  std::string value;
  PutBytes(&value, 1, tag);
  PutBytes(&value, 8, tensor);
  PutBytes(&value, 9, metadata);
  std::string summary;
  PutBytes(&summary, 1, value);
  std::string event = EventHeader(WallTime(), step);
  PutBytes(&event, 5, summary);
  WriteRecord(event);
}

void TfEventsWriter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  FlushLocked();
}

void TfEventsWriter::FlushLocked() {
  CLINRL_CHECK_ERRNO(std::fflush(file_) == 0, "fflush", "flushing {}", path_);
  dirty_ = false;
}

}  // namespace clinrl::trainer
