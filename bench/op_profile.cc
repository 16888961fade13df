#include "bench/op_profile.h"

#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace clinrl::bench {
namespace {

struct Span {
  std::string name;
  int64_t thread = 0;
  double begin_us = 0;
  double end_us = 0;
};

struct OpTotal {
  int64_t calls = 0;
  double self_us = 0;
};

}  // namespace

nlohmann::json OpProfile::ToJson() const {
  return {
      {"wall_s", wall_seconds}, {"op_self_s", op_self_seconds}, {"top", top}};
}

std::string OpProfile::Table() const {
  std::string out = fmt::format("{:<40} {:>8} {:>10} {:>7}\n", "op", "calls",
                                "self ms", "share");
  for (const auto& row : top) {
    out += fmt::format(
        "{:<40} {:>8} {:>10.2f} {:>6.1f}%\n", row["name"].get<std::string>(),
        row["calls"].get<int64_t>(), row["self_ms"].get<double>(),
        100 * row["share"].get<double>());
  }
  out += fmt::format("ops' self time {:.1f} ms of {:.1f} ms wall\n",
                     1e3 * op_self_seconds, 1e3 * wall_seconds);
  return out;
}

OpProfile ProfileOps(const std::function<void()>& work, int top_count) {
  std::stringstream trace;
  OpProfile profile;
  {
    torch::autograd::profiler::RecordProfile guard(trace);
    const auto t0 = std::chrono::steady_clock::now();
    work();
    profile.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
  }
  // The guard writes a Chrome trace: complete events with ts and dur in
  // microseconds, one timeline per thread.
  const nlohmann::json events =
      nlohmann::json::parse(trace.str(), nullptr,
                            /*allow_exceptions=*/false);
  if (!events.is_array()) {
    throw InternalError("bench profile: LibTorch's profiler wrote no trace");
  }
  std::vector<Span> spans;
  for (const auto& e : events) {
    if (!e.is_object() || e.value("ph", "") != "X") continue;
    Span s;
    s.name = e.value("name", "?");
    s.thread =
        e.contains("tid") && e["tid"].is_number() ? e["tid"].get<int64_t>() : 0;
    s.begin_us = e.value("ts", 0.0);
    s.end_us = s.begin_us + e.value("dur", 0.0);
    spans.push_back(std::move(s));
  }
  // Self time: an op's duration less its direct children's, nesting read
  // from the intervals of each thread.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    if (a.thread != b.thread) return a.thread < b.thread;
    if (a.begin_us != b.begin_us) return a.begin_us < b.begin_us;
    return a.end_us > b.end_us;
  });
  std::map<std::string, OpTotal> totals;
  std::vector<std::pair<const Span*, double>> stack;  // span, children's time
  auto close = [&](const Span* s, double children) {
    OpTotal& t = totals[s->name];
    t.calls += 1;
    t.self_us += std::max(0.0, (s->end_us - s->begin_us) - children);
  };
  int64_t thread = -1;
  for (const Span& s : spans) {
    if (s.thread != thread) {
      while (!stack.empty()) {
        close(stack.back().first, stack.back().second);
        stack.pop_back();
      }
      thread = s.thread;
    }
    while (!stack.empty() && stack.back().first->end_us <= s.begin_us) {
      close(stack.back().first, stack.back().second);
      stack.pop_back();
    }
    if (!stack.empty()) stack.back().second += s.end_us - s.begin_us;
    stack.push_back({&s, 0.0});
  }
  while (!stack.empty()) {
    close(stack.back().first, stack.back().second);
    stack.pop_back();
  }
  std::vector<std::pair<std::string, OpTotal>> sorted(totals.begin(),
                                                      totals.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.self_us > b.second.self_us;
  });
  for (const auto& [name, t] : sorted)
    profile.op_self_seconds += t.self_us / 1e6;
  for (size_t i = 0; i < sorted.size() && i < static_cast<size_t>(top_count);
       ++i) {
    const auto& [name, t] = sorted[i];
    profile.top.push_back({{"name", name},
                           {"calls", t.calls},
                           {"self_ms", t.self_us / 1e3},
                           {"share", t.self_us / 1e6 / profile.wall_seconds}});
  }
  return profile;
}

}  // namespace clinrl::bench
