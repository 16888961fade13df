#include "envs/consult_rubric/consult_case.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/rule_matcher.h"

namespace clinrl::envs::consult {

extern const char kEmbeddedConsultCases[];

namespace {

using nlohmann::json;
using rewards::RubricCriterion;

constexpr const char* kSplits[] = {"train", "validation", "test"};
constexpr const char* kShippedSource =
    "envs/consult_rubric/data/consult_cases.jsonl";

std::vector<std::string> Strings(const wire::Fields& f, const char* key) {
  std::vector<std::string> out;
  if (!f.Has(key)) return out;
  const json& array = f.Array(key);
  for (size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string()) {
      throw BadRequest(fmt::format("{}.{}[{}]: expected a string, got {} {}",
                                   f.path(), key, i, array[i].type_name(),
                                   array[i].dump()));
    }
    out.push_back(array[i].get<std::string>());
  }
  return out;
}

Observation ParsePrompt(const wire::Fields& row) {
  const json& messages = row.Array("prompt");
  if (messages.empty()) {
    throw BadRequest("prompt: expected a non-empty array of messages");
  }
  Observation prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    const wire::Fields m(messages[i], fmt::format("prompt[{}]", i));
    prompt.push_back({m.String("role"), m.String("content")});
  }
  return prompt;
}

RubricCriterion ParseCriterion(const json& j, const std::string& path) {
  const wire::Fields f(j, path);
  RubricCriterion c;
  c.criterion = f.String("criterion");
  c.points = f.Double("points");
  if (!std::isfinite(c.points)) {
    throw BadRequest(fmt::format("{}.points: expected a finite number", path));
  }
  c.tags = Strings(f, "tags");
  if (f.Has("match")) {
    c.match = f.Get("match");
    // The defaults: the reward spec gives the plug-in no matcher options.
    rewards::ValidateMatch(c.match, {}, path + ".match");
  }
  return c;
}

std::vector<RubricCriterion> ParseRubrics(const wire::Fields& row) {
  const json& array = row.Array("rubrics");
  std::vector<RubricCriterion> out;
  bool any_positive = false;
  for (size_t i = 0; i < array.size(); ++i) {
    out.push_back(ParseCriterion(array[i], fmt::format("rubrics[{}]", i)));
    any_positive |= out.back().points > 0;
  }
  if (!any_positive) {
    throw BadRequest(
        "rubrics: expected at least one criterion with points > 0 (the "
        "score's denominator), got none");
  }
  return out;
}

std::string ReferenceReply(const wire::Fields& row) {
  if (row.Has("reference_reply")) return row.String("reference_reply");
  if (!row.Has("ideal_completions_data")) return "";
  const json& ideal = row.Get("ideal_completions_data");
  if (ideal.is_null()) return "";
  const wire::Fields f(ideal, "ideal_completions_data");
  return f.String("ideal_completion", "");
}

std::string SplitOf(const wire::Fields& row, const std::string& prompt_id,
                    SplitBy split_by) {
  if (split_by == SplitBy::kHash || !row.Has("split")) {
    return HashSplit(prompt_id);
  }
  const std::string split = row.String("split");
  for (const char* known : kSplits) {
    if (split == known) return split;
  }
  throw BadRequest(fmt::format(
      "split: expected one of train, validation, test, got \"{}\"", split));
}

// One row; errors carry field paths relative to the row ("rubrics[2].points").
ConsultCase ParseRow(const json& j, SplitBy split_by) {
  // wire::Fields prefixes the path it is given; the row itself is unnamed.
  const wire::Fields row(j, "");
  ConsultCase c;
  c.prompt_id = row.String("prompt_id");
  if (c.prompt_id.empty()) {
    throw BadRequest("prompt_id: expected a non-empty string");
  }
  c.prompt = ParsePrompt(row);
  c.rubrics = ParseRubrics(row);
  c.example_tags = Strings(row, "example_tags");
  c.reference_reply = ReferenceReply(row);
  c.split = SplitOf(row, c.prompt_id, split_by);
  for (const auto& criterion : c.rubrics) {
    if (criterion.match.is_null()) ++c.judged_criteria;
  }
  return c;
}

// A row-level wire::Fields has an empty root path, which leaves ".rubrics"
// or ": expected a JSON object" at the front of its messages.
std::string RowMessage(const std::string& message) {
  if (message.rfind(": ", 0) == 0) return message.substr(2);
  return message.rfind('.', 0) == 0 ? message.substr(1) : message;
}

std::string SplitByName(SplitBy split_by) {
  return split_by == SplitBy::kHash ? "hash" : "field_or_hash";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw IoError(
        fmt::format("cannot open \"{}\" ({}); expected a readable "
                    "HealthBench-format JSONL file",
                    path, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string HashSplit(const std::string& prompt_id) {
  // FNV-1a: fixed by its definition, unlike std::hash, so the partition is
  // the same with every standard library.
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : prompt_id) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  const uint64_t bucket = h % 10;
  return bucket < 7 ? "train" : bucket < 8 ? "validation" : "test";
}

ConsultCaseSet ParseConsultCases(const std::string& text,
                                 const std::string& source, SplitBy split_by) {
  ConsultCaseSet set;
  for (const char* split : kSplits) set.splits[split];
  std::map<std::string, int64_t> seen;  // prompt_id -> line
  std::istringstream lines(text);
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", source, number);
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      throw ConfigError(fmt::format(
          "{}: not valid JSON; expected one HealthBench-format row per line",
          where));
    }
    ConsultCase c;
    try {
      c = ParseRow(j, split_by);
    } catch (const BadRequest& e) {
      throw ConfigError(fmt::format("{}: {}", where, RowMessage(e.what())));
    }
    auto [previous, fresh] = seen.emplace(c.prompt_id, number);
    if (!fresh) {
      throw ConfigError(fmt::format(
          "{}: prompt_id: \"{}\" repeats the row on line {}; prompt ids must "
          "be unique",
          where, c.prompt_id, previous->second));
    }
    c.where = where;
    set.splits[c.split].push_back(std::move(c));
  }
  if (seen.empty()) {
    throw ConfigError(
        fmt::format("{}: no rows; expected HealthBench-format "
                    "JSONL, one row per line",
                    source));
  }
  return set;
}

std::shared_ptr<const ConsultCaseSet> SharedConsultCases(
    const std::string& path, SplitBy split_by) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const ConsultCaseSet>> loaded;
  const std::string key = SplitByName(split_by) + "|" + path;
  // Held while parsing, so that env sessions created together read the file
  // once.
  std::lock_guard<std::mutex> lock(mutex);
  auto it = loaded.find(key);
  if (it != loaded.end()) return it->second;
  auto set = std::make_shared<const ConsultCaseSet>(
      path.empty()
          ? ParseConsultCases(kEmbeddedConsultCases, kShippedSource, split_by)
          : ParseConsultCases(ReadFile(path), path, split_by));
  loaded.emplace(key, set);
  return set;
}

}  // namespace clinrl::envs::consult
