// Scripted baselines for ehr_workflow (envs/scripted_policy.h). The oracle
// and partial read the workflow from info.workflow (the reset info exposes
// the workflow key for them, see docs/envs/ehr_workflow.md):
//   oracle        plays the workflow through the action grammar: the GETs it
//                 needs, a POST per required order (task_grader.h's
//                 canonical body), then FINISH with the expected values;
//   partial       the first steps only: the GETs and the first required
//                 order, then FINISH([]), so it earns the checkpoints of
//                 that order (and of orders that must be left out) only;
//   finish_empty  FINISH([]) at once, doing none of the work: credit only
//                 for orders that must be left out;
//   random        a seeded lower baseline: GETs on the task's patient, the
//                 odd malformed action or stray order, then a random FINISH.
// Each writes the text grammar; in an episode with action_mode "tools"
// WithToolCalls (ehr_fhir's agent_tool_call.h) sends the same tool calls.
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "envs/ehr_fhir/agent_tool_call.h"
#include "envs/ehr_fhir/ehr_record.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/ehr_fhir/splitmix.h"
#include "envs/env_options.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::ehr {
namespace {

// How much of a workflow a plan policy plays.
struct PlanShare {
  bool reads = true;         // the GETs the workflow needs
  size_t orders = SIZE_MAX;  // at most this many of its required orders
  bool answer = true;        // FINISH with the expected values, or with []
};

std::vector<std::string> Plan(const json& info, const PlanShare& share) {
  CLINRL_CHECK(info.contains("workflow"),
               "ehr_workflow policy: the reset info has no workflow key");
  const json& key = info.at("workflow");
  const std::string mode = key.at("mode").get<std::string>();
  std::vector<std::string> plan;
  for (const auto& read : share.reads ? key.at("reads") : json::array()) {
    plan.push_back(
        fmt::format("GET {}{}", kEmbeddedApiBase, read.get<std::string>()));
  }
  size_t posted = 0;
  for (const auto& cp : key.at("checkpoints")) {
    if (cp.at("kind") != "order" || cp.at("required").is_null()) continue;
    if (posted++ >= share.orders) break;
    const json body = CanonicalWrite(cp.at("required"), mode);
    plan.push_back(fmt::format("POST {}{}\n{}", kEmbeddedApiBase,
                               body.at("resourceType").get<std::string>(),
                               body.dump()));
  }
  plan.push_back(share.answer
                     ? fmt::format("FINISH({})", key.at("answer").dump())
                     : "FINISH([])");
  return plan;
}

class PlanPolicy : public ScriptedPolicy {
 public:
  explicit PlanPolicy(PlanShare share) : share_(share) {}
  std::string Act(const Observation&, const json& info) override {
    if (!planned_) {
      plan_ = Plan(info, share_);
      planned_ = true;
    }
    CLINRL_CHECK(next_ < plan_.size(),
                 "ehr_workflow policy: asked to act after FINISH");
    return plan_[next_++];
  }

 private:
  PlanShare share_;
  bool planned_ = false;
  std::vector<std::string> plan_;
  size_t next_ = 0;
};

class RandomPolicy : public ScriptedPolicy {
 public:
  explicit RandomPolicy(uint64_t seed) : rng_(seed, 11) {}
  std::string Act(const Observation&, const json& info) override {
    if (patient_.empty()) {
      patient_ = info.at("workflow").at("patient").get<std::string>();
    }
    static const char* kCodes[] = {"2160-0", "2823-3", "85354-9", "6301-6"};
    switch (rng_.Next() % 7) {
      case 0:
        return fmt::format("GET {}AllergyIntolerance?patient={}",
                           kEmbeddedApiBase, patient_);
      case 1:
      case 2:
        return fmt::format("GET {}Observation?patient={}&code={}&_sort=-date",
                           kEmbeddedApiBase, patient_, kCodes[rng_.Next() % 4]);
      case 3:
        return "I am not sure what to do.";
      case 4:
        return fmt::format(
            "POST {}ServiceRequest\n{{\"resourceType\": \"ServiceRequest\", "
            "\"status\": \"active\", \"intent\": \"order\", \"subject\": "
            "{{\"reference\": \"Patient/{}\"}}, \"code\": {{\"coding\": "
            "[{{\"system\": \"http://loinc.org\", \"code\": \"{}\"}}]}}}}",
            kEmbeddedApiBase, patient_, kCodes[rng_.Next() % 4]);
      case 5:
        return "FINISH([])";
      default:
        return fmt::format("FINISH([{}, \"no\"])",
                           static_cast<double>(rng_.Next() % 60) / 10.0);
    }
  }

 private:
  SplitMix64 rng_;
  std::string patient_;
};

// No policy takes options.
template <class Make>
ScriptedPolicyFactory Factory(Make make) {
  return [make](uint64_t seed, const json& options,
                const std::string& path) -> std::unique_ptr<ScriptedPolicy> {
    ReadOptions<NoOptions>(options, path);
    return WithToolCalls(make(seed));
  };
}

CLINRL_REGISTER_SCRIPTED_POLICY(ehr_workflow, oracle, Factory([](uint64_t) {
                                  return std::make_unique<PlanPolicy>(
                                      PlanShare{});
                                }));
CLINRL_REGISTER_SCRIPTED_POLICY(
    ehr_workflow, partial, Factory([](uint64_t) {
      return std::make_unique<PlanPolicy>(PlanShare{true, 1, false});
    }));
CLINRL_REGISTER_SCRIPTED_POLICY(
    ehr_workflow, finish_empty, Factory([](uint64_t) {
      return std::make_unique<PlanPolicy>(PlanShare{false, 0, false});
    }));
CLINRL_REGISTER_SCRIPTED_POLICY(ehr_workflow, random,
                                Factory([](uint64_t seed) {
                                  return std::make_unique<RandomPolicy>(seed);
                                }));

}  // namespace
}  // namespace clinrl::envs::ehr
