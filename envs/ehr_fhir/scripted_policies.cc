// Scripted baselines for ehr_fhir (envs/scripted_policy.h):
//   oracle        reads the answer key from info.reward_spec (an upper bound
//                 that checks the graders, not an agent) and posts exactly
//                 the required writes, then FINISHes with the expected answer;
//   finish_empty  always answers FINISH([]): it succeeds exactly on the tasks
//                 whose right course is to do nothing;
//   random        a seeded lower baseline: GETs on the task's patient, the
//                 odd malformed action, then a random FINISH;
//   clinician     works the task as a clinician would, from what an agent
//                 sees (the question, the family in the reset info, the
//                 server's replies): for latest_lab_24h one windowed search
//                 for the newest magnesium, for most_recent_value one search
//                 for the newest glucose, then FINISH with the value read
//                 from the reply. Option `forget_window` (0..1) is the
//                 probability, per episode, that it forgets the 24-hour
//                 window and answers the newest value whatever its date: an
//                 imperfect expert to imitate (acting on a stale lab is a
//                 common error), which configs/ehr_grpo.json uses.
// Each writes the text grammar; in an episode with action_mode "tools"
// WithToolCalls (agent_tool_call.h) sends its actions as the same tool calls.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "core/error.h"
#include "core/wire.h"
#include "envs/ehr_fhir/agent_tool_call.h"
#include "envs/ehr_fhir/ehr_record.h"
#include "envs/ehr_fhir/fhir_time.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/ehr_fhir/splitmix.h"
#include "envs/ehr_fhir/synthetic_record.h"
#include "envs/env_options.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::ehr {
namespace {

// The prompt names the API base ("Use <base> as the API base").
std::string PromptApiBase(const Observation& transcript) {
  static const std::string kMarker = "Use ";
  for (const auto& m : transcript) {
    const size_t at = m.content.find(kMarker);
    const size_t end = m.content.find(" as the API base");
    if (at != std::string::npos && end != std::string::npos && end > at) {
      return m.content.substr(at + kMarker.size(), end - at - kMarker.size());
    }
  }
  return kEmbeddedApiBase;
}

class OraclePolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation& transcript, const json& info) override {
    if (plan_.empty() && !planned_) {
      planned_ = true;
      const json& components = info.at("reward_spec").at("components");
      CLINRL_CHECK(components.is_array() && !components.empty(),
                   "ehr_fhir oracle: info.reward_spec has no components");
      const json& key = components[0].at("params");
      const std::string mode = key.at("mode").get<std::string>();
      const std::string base = PromptApiBase(transcript);
      for (const auto& w : key.at("required_writes")) {
        const json body = CanonicalWrite(w, mode);
        plan_.push_back(fmt::format("POST {}{}\n{}", base,
                                    body["resourceType"].get<std::string>(),
                                    body.dump()));
      }
      plan_.push_back(
          fmt::format("FINISH({})", key.at("answer").at("expected").dump()));
    }
    CLINRL_CHECK(next_ < plan_.size(),
                 "ehr_fhir oracle: asked to act after FINISH");
    return plan_[next_++];
  }

 private:
  std::vector<std::string> plan_;
  size_t next_ = 0;
  bool planned_ = false;
};

// The first MRN (S and 7 digits) in the question of the reset prompt, or
// "S0000000" when it names none.
std::string QuestionPatient(const Observation& transcript) {
  if (!transcript.empty()) {
    const std::string& q = transcript.front().content;
    const size_t at = q.rfind("Question:");
    for (size_t i = at == std::string::npos ? 0 : at; i + 8 <= q.size(); ++i) {
      if (q[i] == 'S' &&
          std::all_of(q.begin() + static_cast<long>(i) + 1,
                      q.begin() + static_cast<long>(i) + 8, [](char c) {
                        return std::isdigit(static_cast<unsigned char>(c));
                      })) {
        return q.substr(i, 8);
      }
    }
  }
  return "S0000000";
}

class RandomPolicy : public ScriptedPolicy {
 public:
  explicit RandomPolicy(uint64_t seed) : rng_(seed, 7) {}
  std::string Act(const Observation& transcript, const json&) override {
    const std::string patient = QuestionPatient(transcript);
    static const char* kCodes[] = {"19123-9", "2823-3", "2339-0", "4548-4",
                                   "2951-2"};
    switch (Next() % 6) {
      case 0:
        return fmt::format("GET {}Patient?identifier={}", kEmbeddedApiBase,
                           patient);
      case 1:
      case 2:
        return fmt::format("GET {}Observation?patient={}&code={}&_sort=-date",
                           kEmbeddedApiBase, patient, kCodes[Next() % 5]);
      case 3:
        return "I am not sure what to do.";
      case 4:
        return "FINISH([])";
      default:
        return fmt::format("FINISH([{}])",
                           static_cast<double>(Next() % 100) / 10.0);
    }
  }

 private:
  uint64_t Next() { return rng_.Next(); }
  SplitMix64 rng_;
};

struct ClinicianOptions {
  double forget_window = 0.0;

  template <class V>
  void Visit(V& v) {
    v("forget_window", forget_window,
      "P(the 24-hour window is forgotten), per episode, 0..1");
  }
};

class ClinicianPolicy : public ScriptedPolicy {
 public:
  ClinicianPolicy(uint64_t seed, ClinicianOptions options) {
    SplitMix64 rng(seed, 7);
    // Drawn only when the option is on, as the dx oracle's anchoring is.
    forget_window_ =
        options.forget_window > 0 && rng.Uniform() < options.forget_window;
  }

  std::string Act(const Observation& transcript, const json& info) override {
    if (!searched_) {
      searched_ = true;
      const std::string family =
          wire::Fields(wire::Fields(info, "info").Object("task"), "info.task")
              .String("family");
      return Search(family, QuestionPatient(transcript), Clock(transcript),
                    PromptApiBase(transcript));
    }
    // The reply to the search: the newest entry's value, or -1 for none.
    const std::string& reply = transcript.back().content;
    const size_t body = reply.find('\n');
    json bundle = json::parse(
        body == std::string::npos ? "" : reply.substr(body + 1), nullptr,
        /*allow_exceptions=*/false);
    if (!bundle.is_object() || bundle.value("resourceType", "") != "Bundle") {
      throw BadRequest(fmt::format(
          "ehr_fhir clinician: the search's reply is not a Bundle: {}",
          reply.substr(0, 200)));
    }
    const json entries = bundle.value("entry", json::array());
    if (entries.empty()) return "FINISH([-1])";
    const json& value =
        entries[0].at("resource").at("valueQuantity").at("value");
    return fmt::format("FINISH([{}])", value.dump());
  }

 private:
  // "Context: it is <clock> now." in the reset prompt.
  static std::string Clock(const Observation& transcript) {
    static const std::string kMarker = "Context: it is ";
    const std::string& prompt = transcript.front().content;
    const size_t at = prompt.find(kMarker);
    const size_t end = prompt.find(" now.", at);
    CLINRL_CHECK(at != std::string::npos && end != std::string::npos,
                 "ehr_fhir clinician: the prompt states no clock");
    return prompt.substr(at + kMarker.size(), end - at - kMarker.size());
  }

  std::string Search(const std::string& family, const std::string& patient,
                     const std::string& clock,
                     const std::string& api_base) const {
    const std::string base =
        fmt::format("GET {}Observation?patient={}&code=", api_base, patient);
    // Only the newest entry, and of it only what the answer needs.
    const std::string newest =
        "&_sort=-date&_count=1&_elements=effectiveDateTime,valueQuantity";
    if (family == "most_recent_value") {
      return base + loinc::kCapillaryGlucose + newest;
    }
    if (family != "latest_lab_24h") {
      throw ConfigError(fmt::format(
          "ehr_fhir clinician: task family \"{}\" has no scripted procedure "
          "(expected latest_lab_24h or most_recent_value; select them with "
          "the env option families)",
          family));
    }
    if (forget_window_) return base + loinc::kMagnesium + newest;
    const auto now = ParseFhirTime(clock);
    CLINRL_CHECK(now.has_value(), "ehr_fhir clinician: bad clock " + clock);
    std::string since = FormatInstant(now->lo - 24 * 3600);
    // "+00:00" would read as " 00:00" in a query string; UTC is "Z".
    since = since.substr(0, since.size() - 6) + "Z";
    return base + loinc::kMagnesium + "&date=ge" + since + newest;
  }

  bool forget_window_ = false;
  bool searched_ = false;
};

class FinishEmptyPolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation&, const json&) override {
    return "FINISH([])";
  }
};

// Only the clinician has options.
CLINRL_REGISTER_SCRIPTED_POLICY(
    ehr_fhir, oracle,
    [](uint64_t, const json& options,
       const std::string& path) -> std::unique_ptr<ScriptedPolicy> {
      ReadOptions<NoOptions>(options, path);
      return WithToolCalls(std::make_unique<OraclePolicy>());
    });
CLINRL_REGISTER_SCRIPTED_POLICY(
    ehr_fhir, random,
    [](uint64_t seed, const json& options,
       const std::string& path) -> std::unique_ptr<ScriptedPolicy> {
      ReadOptions<NoOptions>(options, path);
      return WithToolCalls(std::make_unique<RandomPolicy>(seed));
    });
CLINRL_REGISTER_SCRIPTED_POLICY(
    ehr_fhir, clinician,
    [](uint64_t seed, const json& options,
       const std::string& path) -> std::unique_ptr<ScriptedPolicy> {
      const auto o = ReadOptions<ClinicianOptions>(options, path);
      if (!(o.forget_window >= 0 && o.forget_window <= 1)) {
        throw ConfigError(
            fmt::format("{}.forget_window: expected a value in [0, 1], got {}",
                        path, o.forget_window));
      }
      return WithToolCalls(std::make_unique<ClinicianPolicy>(seed, o));
    });
CLINRL_REGISTER_SCRIPTED_POLICY(
    ehr_fhir, finish_empty,
    [](uint64_t, const json& options,
       const std::string& path) -> std::unique_ptr<ScriptedPolicy> {
      ReadOptions<NoOptions>(options, path);
      return WithToolCalls(std::make_unique<FinishEmptyPolicy>());
    });

}  // namespace
}  // namespace clinrl::envs::ehr
