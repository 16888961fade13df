#include "report/trajectory_digest.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "core/jsonl.h"
#include "core/wire.h"
#include "report/run_metrics.h"

namespace clinrl::report {

namespace {

using nlohmann::json;

int64_t CountLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open {} for reading", path));
  int64_t lines = 0;
  char buf[1 << 16];
  char last = '\n';
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) lines += buf[i] == '\n';
    last = buf[n - 1];
  }
  if (in.bad()) throw IoError(fmt::format("reading {} failed", path));
  return lines + (last != '\n');  // an unterminated last line counts too
}

int IndexOf(const std::string& name, std::vector<std::string>* names) {
  for (size_t i = 0; i < names->size(); ++i) {
    if ((*names)[i] == name) return static_cast<int>(i);
  }
  names->push_back(name);
  return static_cast<int>(names->size() - 1);
}

std::string CutMessage(const std::string& text, int64_t max_chars) {
  if (max_chars <= 0 || static_cast<int64_t>(text.size()) <= max_chars) {
    return text;
  }
  // Keep whole UTF-8 characters: step back off continuation bytes.
  auto boundary = [&](size_t pos) {
    while (pos > 0 && pos < text.size() &&
           (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) {
      --pos;
    }
    return pos;
  };
  const size_t half = static_cast<size_t>(max_chars / 2);
  const size_t head = boundary(half);
  const size_t tail = boundary(text.size() - half);
  return text.substr(0, head) +
         fmt::format("\n[... {} chars cut ...]\n", tail - head) +
         text.substr(tail);
}

}  // namespace

std::vector<bool> SelectTranscripts(int64_t count, int64_t budget) {
  std::vector<bool> keep(static_cast<size_t>(std::max<int64_t>(count, 0)),
                         false);
  if (budget <= 0 || count <= 0) return keep;
  if (count <= budget) {
    keep.assign(keep.size(), true);
    return keep;
  }
  const int64_t recent = budget / 2;
  const int64_t earlier = count - recent;
  for (int64_t i = earlier; i < count; ++i) keep[i] = true;
  const int64_t spread = budget - recent;
  for (int64_t k = 0; k < spread; ++k) keep[k * earlier / spread] = true;
  return keep;
}

json CompactTranscript(const json& record, int64_t max_message_chars) {
  json out = json::object();
  for (const char* key :
       {"episode_id", "group_id", "env", "split", "task_index", "seed",
        "policy_version", "step", "termination", "step_rewards", "timings"}) {
    if (record.contains(key)) out[key] = record[key];
  }
  json turns = json::array();
  if (record.contains("turns") && record["turns"].is_array()) {
    for (const json& t : record["turns"]) {
      turns.push_back(
          {{"role", t.value("role", "")},
           {"content", CutMessage(t.value("content", ""), max_message_chars)}});
    }
  }
  out["turns"] = std::move(turns);
  if (record.contains("reward")) out["reward"] = record["reward"];
  if (record.contains("info") && record["info"].is_object()) {
    json info = record["info"];
    // The spec repeats the answer key and weights already shown with the
    // reward components; it is often the largest part of the info.
    info.erase("reward_spec");
    out["info"] = std::move(info);
  }
  return out;
}

TrajectoryDigest ReadTrajectoryDigest(const std::string& path,
                                      const TrajectoryDigestOptions& options) {
  const std::vector<bool> keep =
      SelectTranscripts(CountLines(path), options.max_transcripts);
  TrajectoryDigest d;
  // A damaged line is skipped and counted, as in ReadRunMetrics.
  d.bad_lines =
      ReadJsonl(
          path,
          [&](const json& record, int64_t line_number) {
            const std::string where = fmt::format("{}:{}", path, line_number);
            if (!record.is_object()) {
              throw BadRequest(
                  fmt::format("{}: expected a trajectory object, got {}", where,
                              record.dump().substr(0, 80)));
            }
            const wire::Fields f(record, where);
            const size_t i = static_cast<size_t>(d.count);
            d.step.push_back(f.Int("step", -1));
            d.line.push_back(line_number);
            d.split.push_back(IndexOf(f.String("split", ""), &d.splits));
            d.env.push_back(IndexOf(f.String("env", ""), &d.envs));
            d.termination.push_back(
                IndexOf(f.String("termination", "finished"), &d.terminations));
            int policy_turns = 0;
            if (f.Has("turns")) {
              const json& turns = f.Array("turns");
              for (size_t t = 0; t < turns.size(); ++t) {
                const wire::Fields turn(turns[t],
                                        fmt::format("{}: turns[{}]", where, t));
                policy_turns += turn.String("role") == "assistant";
              }
            }
            d.policy_turns.push_back(policy_turns);
            double total = NAN;
            if (f.Has("reward")) {
              const wire::Fields reward(f.Object("reward"), where + ": reward");
              total = reward.Double("total", NAN);
              if (reward.Has("components")) {
                const json& components = reward.Object("components");
                for (auto it = components.begin(); it != components.end();
                     ++it) {
                  const wire::Fields c(
                      it.value(),
                      fmt::format("{}: reward.components.{}", where, it.key()));
                  auto& column = d.components[it.key()];
                  column.resize(i, NAN);
                  column.push_back(c.Double("score"));
                }
              }
            }
            d.reward.push_back(total);
            const bool kept =
                static_cast<size_t>(line_number - 1) < keep.size() &&
                keep[static_cast<size_t>(line_number - 1)];
            if (kept) {
              d.transcript.push_back(
                  static_cast<int64_t>(d.transcripts.size()));
              d.transcripts.push_back(
                  CompactTranscript(record, options.max_message_chars)
                      .dump(-1, ' ', false, json::error_handler_t::replace));
            } else {
              d.transcript.push_back(-1);
            }
            ++d.count;
          },
          BadJsonlLine::kSkip)
          .bad_lines;
  for (auto& [name, column] : d.components) {
    column.resize(static_cast<size_t>(d.count), NAN);
  }
  return d;
}

json TrajectoryDigestJson(const TrajectoryDigest& d, int significant_digits) {
  auto numbers = [&](const std::vector<double>& values) {
    json out = json::array();
    for (double v : values) {
      out.push_back(std::isfinite(v)
                        ? json(RoundSignificant(v, significant_digits))
                        : json());
    }
    return out;
  };
  json names = json::array();
  json comp = json::array();
  for (const auto& [name, column] : d.components) {
    names.push_back(name);
    comp.push_back(numbers(column));
  }
  json columns = {{"step", d.step},
                  {"line", d.line},
                  {"split", d.split},
                  {"env", d.env},
                  {"term", d.termination},
                  {"turns", d.policy_turns},
                  {"reward", numbers(d.reward)},
                  {"transcript", d.transcript},
                  {"comp", std::move(comp)}};
  return {{"count", d.count},
          {"bad_lines", d.bad_lines},
          {"splits", d.splits},
          {"envs", d.envs},
          {"terminations", d.terminations},
          {"components", std::move(names)},
          {"columns", std::move(columns)},
          {"transcripts", d.transcripts}};
}

}  // namespace clinrl::report
