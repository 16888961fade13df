#include "envs/ehr_fhir/ehr_fhir_env.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "envs/ehr_fhir/agent_action.h"
#include "envs/ehr_fhir/agent_tool_call.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/env_options.h"
#include "envs/env_registry.h"

namespace clinrl::envs::ehr {
namespace {

std::string FunctionList(const std::string& base, const std::string& mode) {
  std::string out;
  for (const auto& type : SupportedResourceTypes()) {
    std::string params;
    for (const auto& [name, kind] : SearchParams(type)) {
      static const char* kKinds[] = {
          "reference: Patient id", "token: code or system|code",
          "string: prefix",
          "date: [eq|ne|gt|lt|ge|le]YYYY-MM-DD[Thh:mm:ss+hh:mm]"};
      params +=
          fmt::format("    {} ({})\n", name, kKinds[static_cast<int>(kind)]);
    }
    out += fmt::format("GET {}{} - search {} resources; parameters:\n{}", base,
                       type, type, params);
  }
  out +=
      "  every search also takes _count, _sort (e.g. -date), _elements (e.g. "
      "effectiveDateTime,valueQuantity) and _format=json\n";
  out += fmt::format("GET {}[type]/[id] - read one resource\n", base);
  out += fmt::format(
      "POST {}Observation, {}MedicationRequest, {}ServiceRequest - create a "
      "resource; the JSON body needs resourceType, status, subject "
      "{{\"reference\": \"Patient/[id]\"}} and the type's required fields "
      "(intent and a code for orders)\n",
      base, base, base);
  if (mode == kStrictR4) {
    out +=
        "Write resources in FHIR R4 form: coded CodeableConcepts (LOINC, "
        "SNOMED CT, NDC), Quantities with UCUM system and code, "
        "dosageInstruction.route as a CodeableConcept, infusion duration in "
        "dosageInstruction.timing.repeat, note as a list of Annotations, "
        "blood pressure as a LOINC 85354-9 panel with systolic and diastolic "
        "components.\n";
  } else {
    out +=
        "Write resources in MedAgentBench's form: blood pressure as "
        "code {\"text\": \"BP\"} with valueString and category system "
        "http://hl7.org/fhir/observation-category; medication route as a "
        "string (\"IV\", \"oral\"), doseQuantity {value, unit} and infusion "
        "time as rateQuantity {value, unit \"h\"}; note as an object.\n";
  }
  return out;
}

}  // namespace

std::string TaskPrompt(const EhrTask& task, const std::string& api_base,
                       const std::string& mode, bool brief, bool tools) {
  const char* action_format =
      tools ? kAgentToolInstruction : kAgentActionFormat;
  if (brief) {
    return fmt::format(
        "{}\nUse {} as the API base.\nContext: it is {} now. Patient ids are "
        "MRNs.\nQuestion: {}",
        action_format, api_base, task.answer_key.value("task_clock", ""),
        task.question);
  }
  return fmt::format(
      "You are an expert in using FHIR functions to assist medical "
      "professionals. Answer the question by calling the functions below, one "
      "call per reply.\n{}\n\nUse {} as the API base. Functions{}:\n{}\n"
      "Context: it is {} now. Patient ids are MRNs.\nQuestion: {}",
      action_format, api_base,
      tools ? " (GET ones through fhir_get, POST ones through fhir_post)" : "",
      FunctionList(api_base, mode), task.answer_key.value("task_clock", ""),
      task.question);
}

EhrFhirOptions EhrFhirOptions::FromJson(const json& options,
                                        const std::string& path) {
  EhrFhirOptions o = ReadOptions<EhrFhirOptions>(options, path);
  if (!o.base_url.empty()) {
    if (o.base_url.rfind("http://", 0) != 0 &&
        o.base_url.rfind("https://", 0) != 0) {
      throw ConfigError(fmt::format(
          "{}.base_url: expected an http:// or https:// URL, got \"{}\"", path,
          o.base_url));
    }
    if (o.base_url.back() != '/') o.base_url += '/';
  }
  for (size_t i = 0; i < o.families.size(); ++i) {
    if (!IsTaskFamily(o.families[i])) {
      throw ConfigError(fmt::format(
          "{}.families[{}]: unknown task family \"{}\" (expected one of {})",
          path, i, o.families[i], fmt::join(TaskFamilies(), ", ")));
    }
  }
  if (o.dry_run && o.base_url.empty()) {
    throw ConfigError(fmt::format(
        "{}.dry_run: only applies with base_url (the embedded server already "
        "sandboxes every session)",
        path));
  }
  return o;
}

EhrFhirEnv::EhrFhirEnv(EhrFhirOptions options)
    : EhrEnv(SharedEhrRecord(options.source), "s", options.max_turns,
             options.tools(), options.base_url, options.dry_run),
      options_(std::move(options)) {}

std::unique_ptr<Env> EhrFhirEnv::Create(const json& options,
                                        const std::string& path) {
  return std::make_unique<EhrFhirEnv>(EhrFhirOptions::FromJson(options, path));
}

EnvSpec EhrFhirEnv::Spec() const {
  EnvSpec s = SpecWithoutSplits("ehr_fhir");
  for (const char* split : {"train", "test"}) {
    s.splits[split] = static_cast<int64_t>(
        record()
            ->Tasks(split, options_.grading, options_.Selection(split))
            .size());
  }
  return s;
}

ResetResult EhrFhirEnv::Reset(const ResetRequest& request) {
  ReadOptions<NoOptions>(request.options, "options");
  if (request.split != "train" && request.split != "test") {
    throw BadRequest(fmt::format(
        "split: unknown split \"{}\" (expected train or test)", request.split));
  }
  const auto& tasks = record()->Tasks(request.split, options_.grading,
                                      options_.Selection(request.split));
  if (tasks.empty()) {
    throw BadRequest(
        fmt::format("split {}: no tasks for this record", request.split));
  }
  const int64_t n = static_cast<int64_t>(tasks.size());
  int64_t index = 0;
  if (request.task_index) {
    index = *request.task_index;
    if (index < 0 || index >= n) {
      throw BadRequest(fmt::format(
          "task_index: {} is out of range for split {} (expected 0..{})", index,
          request.split, n - 1));
    }
  } else if (request.seed) {
    index = static_cast<int64_t>(static_cast<uint64_t>(*request.seed) %
                                 static_cast<uint64_t>(n));
  }
  StartEpisode();
  task_ = &tasks[static_cast<size_t>(index)];
  ResetResult out;
  out.observation.push_back(
      {"user", TaskPrompt(*task_, session().ApiBase(), options_.grading,
                          options_.prompt == "brief", options_.tools())});
  out.info = {{"reward_spec",
               {{"components", json::array({{{"name", "task"},
                                             {"plugin", "ehr_task"},
                                             {"weight", 1.0},
                                             {"params", task_->answer_key}}})},
                {"success", "task"}}},
              {"task",
               {{"family", task_->family},
                {"split", request.split},
                {"task_index", index},
                {"grading", options_.grading}}},
              {"action_mode", options_.action_mode},
              {"invalid_actions", 0}};
  return out;
}

EhrEnv::EpisodeGrade EhrFhirEnv::Grade(const json& episode) const {
  json verdict = GradeEpisode(task_->answer_key, episode);
  const bool correct = verdict["correct"].get<bool>();
  return {correct ? 1.0 : 0.0, correct, std::move(verdict)};
}

CLINRL_REGISTER_ENV(ehr_fhir, EhrFhirEnv::Create);

}  // namespace clinrl::envs::ehr
