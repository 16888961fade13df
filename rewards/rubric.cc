#include "rewards/rubric.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::rewards {
namespace {

std::vector<std::string> Strings(const wire::Fields& f, const char* key) {
  std::vector<std::string> out;
  if (!f.Has(key)) return out;
  for (const auto& x : f.Array(key)) {
    if (!x.is_string()) {
      throw BadRequest(fmt::format(
          "{}.{}: expected an array of strings, got an element {} {}", f.path(),
          key, x.type_name(), x.dump()));
    }
    out.push_back(x.get<std::string>());
  }
  return out;
}

double ClippedMean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double sum = 0.0;
  for (double x : v) sum += x;
  return std::clamp(sum / static_cast<double>(v.size()), 0.0, 1.0);
}

}  // namespace

std::vector<RubricCriterion> ParseCriteria(const nlohmann::json& array,
                                           const std::string& path) {
  if (!array.is_array() || array.empty()) {
    throw BadRequest(
        fmt::format("{}: expected a non-empty array of criteria, got {} {}",
                    path, array.type_name(), array.dump().substr(0, 80)));
  }
  std::vector<RubricCriterion> out;
  bool any_positive = false;
  for (size_t i = 0; i < array.size(); ++i) {
    const wire::Fields f(array[i], fmt::format("{}[{}]", path, i));
    RubricCriterion c;
    c.criterion = f.String("criterion");
    c.points = f.Double("points");
    if (!std::isfinite(c.points)) {
      throw BadRequest(
          fmt::format("{}.points: expected a finite number", f.path()));
    }
    c.tags = Strings(f, "tags");
    if (f.Has("match")) c.match = f.Object("match");
    any_positive |= c.points > 0;
    out.push_back(std::move(c));
  }
  if (!any_positive) {
    throw BadRequest(fmt::format(
        "{}: expected at least one criterion with points > 0 (the score's "
        "denominator), got none",
        path));
  }
  return out;
}

std::vector<Message> ParseMessages(const nlohmann::json& array,
                                   const std::string& path) {
  if (!array.is_array()) {
    throw BadRequest(fmt::format("{}: expected an array of messages, got {}",
                                 path, array.type_name()));
  }
  std::vector<Message> out;
  for (size_t i = 0; i < array.size(); ++i) {
    const wire::Fields f(array[i], fmt::format("{}[{}]", path, i));
    out.push_back({f.String("role"), f.String("content")});
  }
  return out;
}

RubricRow ParseRubricRow(const nlohmann::json& row, const std::string& path) {
  const wire::Fields f(row, path);
  RubricRow r;
  r.prompt_id = f.String("prompt_id", "");
  if (f.Has("prompt"))
    r.prompt = ParseMessages(f.Get("prompt"), path + ".prompt");
  r.rubrics = ParseCriteria(f.Get("rubrics"), path + ".rubrics");
  r.example_tags = Strings(f, "example_tags");
  return r;
}

ExampleScore ScoreExample(const std::vector<RubricCriterion>& criteria,
                          const std::vector<bool>& met) {
  CLINRL_CHECK(criteria.size() == met.size(),
               "ScoreExample: {} criteria but {} verdicts", criteria.size(),
               met.size());
  ExampleScore s;
  std::map<std::string, std::pair<double, double>> by_tag;
  for (size_t i = 0; i < criteria.size(); ++i) {
    const double p = criteria[i].points;
    if (p > 0) s.possible += p;
    if (met[i]) s.achieved += p;
    for (const auto& tag : criteria[i].tags) {
      auto& [achieved, possible] = by_tag[tag];
      if (p > 0) possible += p;
      if (met[i]) achieved += p;
    }
  }
  CLINRL_CHECK(s.possible > 0, "ScoreExample: no positive points");
  s.score = s.achieved / s.possible;
  for (const auto& [tag, ap] : by_tag) {
    if (ap.second > 0) s.tag_scores[tag] = ap.first / ap.second;
  }
  return s;
}

SetScore AggregateScores(
    const std::vector<ExampleScore>& examples,
    const std::vector<std::vector<std::string>>& example_tags) {
  CLINRL_CHECK(example_tags.empty() || example_tags.size() == examples.size(),
               "AggregateScores: {} examples but {} tag lists", examples.size(),
               example_tags.size());
  SetScore out;
  out.examples = static_cast<int64_t>(examples.size());
  std::vector<double> overall;
  std::map<std::string, std::vector<double>> tags;
  for (size_t i = 0; i < examples.size(); ++i) {
    overall.push_back(examples[i].score);
    for (const auto& [tag, score] : examples[i].tag_scores) {
      tags[tag].push_back(score);
    }
    if (!example_tags.empty()) {
      for (const auto& tag : example_tags[i]) {
        tags[tag].push_back(examples[i].score);
      }
    }
  }
  out.overall = ClippedMean(overall);
  for (const auto& [tag, values] : tags) {
    out.tags[tag] = ClippedMean(values);
    out.tag_counts[tag] = static_cast<int64_t>(values.size());
  }
  return out;
}

nlohmann::json ToJson(const ExampleScore& s) {
  return {{"score", s.score},
          {"points_achieved", s.achieved},
          {"points_possible", s.possible},
          {"tags", s.tag_scores}};
}

nlohmann::json ToJson(const SetScore& s) {
  return {{"overall", s.overall},
          {"examples", s.examples},
          {"tags", s.tags},
          {"tag_counts", s.tag_counts}};
}

}  // namespace clinrl::rewards
