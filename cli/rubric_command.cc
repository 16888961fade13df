// `clinrl rubric eval --rubrics FILE.jsonl --responses FILE.jsonl`: scores a
// file of responses against HealthBench-format rubrics, offline with the
// rule matcher or through an OpenAI-compatible judge; prints the set's
// scores (overall and per tag, clipped after averaging) as one JSON line.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "cli/command_registry.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "rewards/rubric_eval.h"

namespace clinrl::cli {
namespace {

struct RubricArgs {
  std::string rubrics;
  std::string responses;
  std::string matcher = "rule";
  std::string judge_url;
  std::string judge_model = "gpt-4.1";
  std::string api_key_env;
  int64_t concurrency = 8;
  int64_t max_retries = 3;
  std::string out;
};

void AddRubricCommands(CLI::App& app) {
  auto* rubric = app.add_subcommand("rubric", "HealthBench-format rubrics");
  rubric->require_subcommand(1);
  auto* eval =
      rubric->add_subcommand("eval", "score responses against rubrics");
  auto args = std::make_shared<RubricArgs>();
  eval->add_option("--rubrics", args->rubrics,
                   "JSONL rows {prompt, rubrics: [{criterion, points, tags, "
                   "match}], example_tags, prompt_id}")
      ->required();
  eval->add_option("--responses", args->responses,
                   "JSONL rows {prompt_id, response} (or completion)")
      ->required();
  eval->add_option("--matcher", args->matcher, "rule | llm_judge")
      ->capture_default_str();
  eval->add_option("--judge-url", args->judge_url,
                   "OpenAI-compatible base URL (llm_judge)");
  eval->add_option("--judge-model", args->judge_model, "judge model name")
      ->capture_default_str();
  eval->add_option("--api-key-env", args->api_key_env,
                   "environment variable holding the judge's API key");
  eval->add_option("--concurrency", args->concurrency,
                   "judge requests in flight")
      ->capture_default_str();
  eval->add_option("--max-retries", args->max_retries,
                   "retries of a malformed judge reply")
      ->capture_default_str();
  eval->add_option("--out", args->out, "write per-example scores (JSONL)");
  eval->callback([args] {
    const int rc = RunCommand([&] {
      rewards::RubricEvalOptions options;
      options.matcher = args->matcher;
      if (args->matcher == "llm_judge") {
        if (args->judge_url.empty()) {
          throw BadRequest("--judge-url: required with --matcher llm_judge");
        }
        options.judge =
            rewards::ParseLlmJudgeOptions({{"url", args->judge_url},
                                           {"model", args->judge_model},
                                           {"api_key_env", args->api_key_env},
                                           {"concurrency", args->concurrency},
                                           {"max_retries", args->max_retries}},
                                          "--judge-*");
      }
      const auto result =
          rewards::EvaluateRubricFiles(args->rubrics, args->responses, options);
      if (!args->out.empty()) {
        // A rerun replaces the file rather than appending to it.
        if (std::remove(args->out.c_str()) != 0 && errno != ENOENT) {
          throw IoError(fmt::format("--out {}: cannot replace: {}", args->out,
                                    std::strerror(errno)));
        }
        JsonlWriter writer(args->out);
        for (const auto& e : result.examples) writer.Write(e);
      }
      std::cout << rewards::ToJson(result.set).dump() << std::endl;
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(rubric, AddRubricCommands);

}  // namespace clinrl::cli
