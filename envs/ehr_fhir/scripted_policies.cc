// Scripted baselines for ehr_fhir (envs/scripted_policy.h):
//   oracle        reads the answer key from info.reward_spec (an upper bound
//                 that checks the graders, not an agent) and posts exactly
//                 the required writes, then FINISHes with the expected answer;
//   finish_empty  always answers FINISH([]): it succeeds exactly on the tasks
//                 whose right course is to do nothing;
//   random        a seeded lower baseline: GETs on the task's patient, the
//                 odd malformed action, then a random FINISH.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "core/error.h"
#include "envs/ehr_fhir/ehr_record.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/env_options.h"
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

class RandomPolicy : public ScriptedPolicy {
 public:
  explicit RandomPolicy(uint64_t seed)
      : state_(seed * 0x9E3779B97F4A7C15ULL + 7) {}
  std::string Act(const Observation& transcript, const json&) override {
    std::string patient = "S0000000";
    if (!transcript.empty()) {
      const std::string& q = transcript.front().content;
      const size_t at = q.rfind("Question:");
      for (size_t i = at == std::string::npos ? 0 : at; i + 8 <= q.size();
           ++i) {
        if (q[i] == 'S' &&
            std::all_of(q.begin() + static_cast<long>(i) + 1,
                        q.begin() + static_cast<long>(i) + 8, [](char c) {
                          return std::isdigit(static_cast<unsigned char>(c));
                        })) {
          patient = q.substr(i, 8);
          break;
        }
      }
    }
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
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

class FinishEmptyPolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation&, const json&) override {
    return "FINISH([])";
  }
};

// No policy here has options.
CLINRL_REGISTER_SCRIPTED_POLICY(ehr_fhir, oracle,
                                [](uint64_t, const json& options,
                                   const std::string& path)
                                    -> std::unique_ptr<ScriptedPolicy> {
                                  ReadOptions<NoOptions>(options, path);
                                  return std::make_unique<OraclePolicy>();
                                });
CLINRL_REGISTER_SCRIPTED_POLICY(ehr_fhir, random,
                                [](uint64_t seed, const json& options,
                                   const std::string& path)
                                    -> std::unique_ptr<ScriptedPolicy> {
                                  ReadOptions<NoOptions>(options, path);
                                  return std::make_unique<RandomPolicy>(seed);
                                });
CLINRL_REGISTER_SCRIPTED_POLICY(ehr_fhir, finish_empty,
                                [](uint64_t, const json& options,
                                   const std::string& path)
                                    -> std::unique_ptr<ScriptedPolicy> {
                                  ReadOptions<NoOptions>(options, path);
                                  return std::make_unique<FinishEmptyPolicy>();
                                });

}  // namespace
}  // namespace clinrl::envs::ehr
