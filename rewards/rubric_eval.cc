#include "rewards/rubric_eval.h"

#include <map>

#include "core/error.h"
#include "core/jsonl.h"
#include "core/wire.h"

namespace clinrl::rewards {

std::string ResponseText(const nlohmann::json& row, const std::string& path) {
  const wire::Fields f(row, path);
  if (f.Has("response")) return f.String("response");
  if (!f.Has("completion")) {
    throw BadRequest(fmt::format(
        "{}: expected a \"response\" string or a \"completion\" (string or "
        "messages)",
        path));
  }
  const auto& completion = f.Get("completion");
  if (completion.is_string()) return completion.get<std::string>();
  const auto messages = ParseMessages(completion, path + ".completion");
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    if (it->role == "assistant") return it->content;
  }
  throw BadRequest(fmt::format(
      "{}.completion: expected at least one assistant message", path));
}

RubricEvalResult EvaluateRubrics(const std::vector<RubricRow>& rows,
                                 const std::vector<nlohmann::json>& responses,
                                 const RubricEvalOptions& options) {
  if (options.matcher != "rule" && options.matcher != "llm_judge") {
    throw BadRequest(
        fmt::format("--matcher: expected one of rule, llm_judge, got \"{}\"",
                    options.matcher));
  }
  bool by_id = !responses.empty();
  for (const auto& r : responses) {
    by_id = by_id && r.is_object() && r.contains("prompt_id");
  }
  std::map<std::string, size_t> row_by_id;
  if (by_id) {
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].prompt_id.empty()) {
        throw BadRequest(fmt::format(
            "rubrics line {}: responses pair by prompt_id but this row has "
            "none",
            i + 1));
      }
      if (!row_by_id.emplace(rows[i].prompt_id, i).second) {
        throw BadRequest(
            fmt::format("rubrics line {}: prompt_id \"{}\" appears twice",
                        i + 1, rows[i].prompt_id));
      }
    }
  } else if (responses.size() != rows.size()) {
    throw BadRequest(fmt::format(
        "responses: {} rows for {} rubric rows; pair them by line (equal "
        "counts) or give every response a prompt_id",
        responses.size(), rows.size()));
  }
  if (options.matcher == "rule") {
    for (size_t i = 0; i < rows.size(); ++i) {
      ValidateRules(rows[i].rubrics, options.rules,
                    fmt::format("rubrics line {}: rubrics", i + 1));
    }
  }

  RubricEvalResult out;
  std::vector<ExampleScore> scores;
  std::vector<std::vector<std::string>> example_tags;
  for (size_t k = 0; k < responses.size(); ++k) {
    const std::string path = fmt::format("responses line {}", k + 1);
    size_t row_index = k;
    if (by_id) {
      const std::string id =
          wire::Fields(responses[k], path).String("prompt_id");
      auto it = row_by_id.find(id);
      if (it == row_by_id.end()) {
        throw BadRequest(fmt::format(
            "{}.prompt_id: \"{}\" is not in the rubrics file", path, id));
      }
      row_index = it->second;
    }
    const RubricRow& row = rows[row_index];
    const std::string response = ResponseText(responses[k], path);
    std::vector<CriterionVerdict> verdicts;
    if (options.matcher == "rule") {
      verdicts = MatchRules(response, row.rubrics, options.rules);
    } else {
      std::vector<Message> conversation = row.prompt;
      conversation.push_back({"assistant", response});
      verdicts = JudgeCriteria(conversation, row.rubrics, options.judge);
    }
    std::vector<bool> met;
    nlohmann::json criteria = nlohmann::json::array();
    for (size_t i = 0; i < verdicts.size(); ++i) {
      met.push_back(verdicts[i].met);
      criteria.push_back({{"criterion", row.rubrics[i].criterion},
                          {"points", row.rubrics[i].points},
                          {"met", verdicts[i].met},
                          {"why", verdicts[i].explanation}});
    }
    const ExampleScore s = ScoreExample(row.rubrics, met);
    nlohmann::json example = ToJson(s);
    example["prompt_id"] = row.prompt_id;
    example["example_tags"] = row.example_tags;
    example["criteria"] = std::move(criteria);
    out.examples.push_back(std::move(example));
    scores.push_back(s);
    example_tags.push_back(row.example_tags);
  }
  out.set = AggregateScores(scores, example_tags);
  return out;
}

RubricEvalResult EvaluateRubricFiles(const std::string& rubrics_path,
                                     const std::string& responses_path,
                                     const RubricEvalOptions& options) {
  std::vector<RubricRow> rows;
  ReadJsonl(rubrics_path, [&](const nlohmann::json& row, int64_t line) {
    rows.push_back(
        ParseRubricRow(row, fmt::format("{} line {}", rubrics_path, line)));
  });
  std::vector<nlohmann::json> responses;
  ReadJsonl(responses_path, [&](const nlohmann::json& row, int64_t line) {
    responses.push_back(row);
  });
  if (rows.empty()) {
    throw BadRequest(fmt::format("--rubrics {}: no rows", rubrics_path));
  }
  return EvaluateRubrics(rows, responses, options);
}

}  // namespace clinrl::rewards
