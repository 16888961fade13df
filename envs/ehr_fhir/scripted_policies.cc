// Scripted baselines for ehr_fhir (envs/scripted_policy.h):
//   oracle        reads the answer key from info.reward_spec (an upper bound
//                 that checks the graders, not an agent) and posts exactly
//                 the required writes, then FINISHes with the expected answer;
//   finish_empty  always answers FINISH([]): it succeeds exactly on the tasks
//                 whose right course is to do nothing.
#include <fmt/format.h>

#include <memory>

#include "core/error.h"
#include "envs/ehr_fhir/ehr_record.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::ehr {
namespace {

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
      const std::string base = ApiBase(transcript);
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
  // The prompt names the API base ("Use <base> as the API base").
  static std::string ApiBase(const Observation& transcript) {
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

  std::vector<std::string> plan_;
  size_t next_ = 0;
  bool planned_ = false;
};

class FinishEmptyPolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation&, const json&) override {
    return "FINISH([])";
  }
};

CLINRL_REGISTER_SCRIPTED_POLICY(ehr_fhir, oracle,
                                [](uint64_t, const json&)
                                    -> std::unique_ptr<ScriptedPolicy> {
                                  return std::make_unique<OraclePolicy>();
                                });
CLINRL_REGISTER_SCRIPTED_POLICY(ehr_fhir, finish_empty,
                                [](uint64_t, const json&)
                                    -> std::unique_ptr<ScriptedPolicy> {
                                  return std::make_unique<FinishEmptyPolicy>();
                                });

}  // namespace
}  // namespace clinrl::envs::ehr
