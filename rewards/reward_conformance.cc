#include "rewards/reward_conformance.h"

#include <cxxabi.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <limits>
#include <memory>
#include <thread>
#include <typeinfo>

#include "core/error.h"
#include "core/trajectory.h"
#include "rewards/composite_reward.h"
#include "rewards/reward_registry.h"
#include "rewards/reward_wire.h"

namespace clinrl::rewards {
namespace {

using nlohmann::json;

// Scoring threads at once in scores_are_deterministic.
constexpr size_t kParallelScores = 4;
// The weight the suite gives its one composite component.
constexpr double kComponentWeight = 0.5;

// The results in the order their checks first ran; a check that fails on
// several samples collects one message per sample.
class CheckLog {
 public:
  void Pass(const std::string& check) { Entry(check); }
  void Fail(const std::string& check, const std::string& why) {
    std::string& failure = Entry(check).failure;
    if (!failure.empty()) failure += "; ";
    failure += why;
  }
  std::vector<ConformanceResult> Take() { return std::move(results_); }

 private:
  ConformanceResult& Entry(const std::string& check) {
    auto it = std::find_if(
        results_.begin(), results_.end(),
        [&](const ConformanceResult& r) { return r.check == check; });
    if (it != results_.end()) return *it;
    results_.push_back({check, ""});
    return results_.back();
  }

  std::vector<ConformanceResult> results_;
};

// Messages go on one output line each (`clinrl reward check`).
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::string TypeName(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? name.get() : type.name();
}

// What the exception being handled is, for a message: its type, its code
// when it is one of clinrl's errors, and what() (call inside a catch).
std::string DescribeCurrentException() {
  try {
    throw;
  } catch (const Error& e) {
    return OneLine(fmt::format("{} (code {}): {}", TypeName(typeid(e)),
                               e.code(), e.what()));
  } catch (const std::exception& e) {
    return OneLine(fmt::format("{}: {}", TypeName(typeid(e)), e.what()));
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

// Equal, counting two NaNs as equal, so that a NaN score is reported once,
// by scores_are_finite, not again as nondeterminism.
bool SameScore(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

// Within 4 ULPs, as GoogleTest's EXPECT_DOUBLE_EQ.
bool NearlyEqual(double a, double b) {
  if (a == b) return true;
  return std::fabs(a - b) <= 4 * std::numeric_limits<double>::epsilon() *
                                 std::max(std::fabs(a), std::fabs(b));
}

// A short dialogue with every field a plug-in may read: answer, diagnosis
// and disposition lines, numbers, token ids and log-probs, info.metrics and
// info.final.
Trajectory SampleTrajectory() {
  Trajectory t;
  t.episode_id = "conf-1";
  t.group_id = "conf";
  t.env = "conformance";
  t.split = "test";
  t.task_index = 3;
  t.seed = 11;
  t.turns.push_back({"system", "You are a physician.", {}, {}});
  const char* actions[] = {"ASK: Where is the pain?", "TEST: ecg",
                           "ANSWER: B\nDIAGNOSIS: I21.4 NSTEMI\nDISPOSITION: "
                           "emergency department; call 911, aspirin 325 mg"};
  int64_t token = 1;
  for (const char* action : actions) {
    t.turns.push_back({"user", "It is in my chest, 7.4 out of 10.", {}, {}});
    Turn turn{"assistant", action, {}, {}};
    for (int i = 0; i < 6; ++i) {
      turn.token_ids.push_back(token++);
      turn.logprobs.push_back(-0.125f * static_cast<float>(i));
    }
    t.turns.push_back(std::move(turn));
  }
  t.info = {{"metrics", {{"cost", 35.5}}}, {"final", {{"answer", "B"}}}};
  return t;
}

void CheckNonObjectParams(const Reward& reward, CheckLog* log) {
  const std::string check = "rejects_non_object_params";
  log->Pass(check);
  for (const json& params : {json(42), json("x"), json::array()}) {
    try {
      reward.ValidateParams(params);
      log->Fail(check, fmt::format("accepted params {}", params.dump()));
    } catch (const BadRequest&) {
    } catch (...) {
      log->Fail(check, fmt::format("params {}: threw {} instead of BadRequest",
                                   params.dump(), DescribeCurrentException()));
    }
  }
}

// True when the plug-in accepts params {}.
bool CheckEmptyParams(const Reward& reward, CheckLog* log) {
  const std::string check = "handles_empty_params";
  log->Pass(check);
  try {
    reward.ValidateParams(json::object());
    return true;
  } catch (const BadRequest&) {
  } catch (...) {
    log->Fail(check, fmt::format("params {{}}: threw {} instead of BadRequest",
                                 DescribeCurrentException()));
  }
  return false;
}

// The valid samples the plug-in accepts.
std::vector<json> CheckValidParams(const Reward& reward,
                                   const std::vector<json>& valid,
                                   CheckLog* log) {
  const std::string check = "accepts_valid_params";
  std::vector<json> accepted;
  if (valid.empty()) return accepted;
  log->Pass(check);
  for (const json& params : valid) {
    try {
      reward.ValidateParams(params);
      accepted.push_back(params);
    } catch (...) {
      log->Fail(check, fmt::format("params {}: threw {}", params.dump(),
                                   DescribeCurrentException()));
    }
  }
  return accepted;
}

void CheckMalformedParams(const Reward& reward,
                          const std::vector<MalformedParams>& malformed,
                          CheckLog* log) {
  const std::string check = "rejects_malformed_params";
  if (malformed.empty()) return;
  log->Pass(check);
  for (const MalformedParams& bad : malformed) {
    try {
      reward.ValidateParams(bad.params);
      log->Fail(check, fmt::format("accepted params {}", bad.params.dump()));
    } catch (const BadRequest& e) {
      if (std::string(e.what()).find(bad.field) == std::string::npos) {
        log->Fail(check, OneLine(fmt::format(
                             "params {}: the error does not name {}: {}",
                             bad.params.dump(), bad.field, e.what())));
      }
    } catch (...) {
      log->Fail(check,
                fmt::format("params {}: threw {} instead of BadRequest",
                            bad.params.dump(), DescribeCurrentException()));
    }
  }
}

void CheckDeterministic(const Reward& reward, const Trajectory& base,
                        const json& params, const ScoreResult& first,
                        CheckLog* log) {
  const std::string check = "scores_are_deterministic";
  log->Pass(check);
  std::vector<ScoreResult> parallel(kParallelScores);
  std::vector<std::string> errors(kParallelScores);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < kParallelScores; ++k) {
    threads.emplace_back([&, k] {
      try {
        parallel[k] = reward.Score(base, params);
      } catch (...) {
        errors[k] = DescribeCurrentException();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (size_t k = 0; k < kParallelScores; ++k) {
    if (!errors[k].empty()) {
      log->Fail(check, fmt::format("params {}: Score threw {} when run again",
                                   params.dump(), errors[k]));
    } else if (!SameScore(parallel[k].score, first.score) ||
               parallel[k].details != first.details) {
      log->Fail(check,
                fmt::format("params {}: scored {} {} first, then {} {}",
                            params.dump(), first.score, first.details.dump(),
                            parallel[k].score, parallel[k].details.dump()));
    }
  }
}

void CheckCompositeResult(const RewardResult& direct, const ScoreResult& first,
                          const json& params, CheckLog* log) {
  const std::string check = "composite_matches_score";
  log->Pass(check);
  if (IsFlagged(direct)) {
    log->Fail(check,
              OneLine(fmt::format("params {}: flagged: {}", params.dump(),
                                  ComponentErrors(direct).dump())));
  }
  const auto component = direct.components.find("c");
  if (component == direct.components.end()) {
    log->Fail(check, fmt::format("params {}: no component \"c\" in the result",
                                 params.dump()));
  } else if (!SameScore(component->second.score, first.score)) {
    log->Fail(check,
              fmt::format("params {}: the component scored {}, Score gave {}",
                          params.dump(), component->second.score, first.score));
  }
  if (!NearlyEqual(direct.total, kComponentWeight * first.score)) {
    log->Fail(check, fmt::format("params {}: total {}, expected {} * {}",
                                 params.dump(), direct.total, kComponentWeight,
                                 first.score));
  }
}

void CheckTrajectoryRoundTrip(const Trajectory& t, const RewardResult& direct,
                              const json& params, CheckLog* log) {
  const std::string check = "trajectory_json_round_trip";
  log->Pass(check);
  try {
    const Trajectory wired = TrajectoryFromJson(json::parse(ToJson(t).dump()));
    if (!(wired == t)) {
      log->Fail(check, fmt::format("params {}: the trajectory changed",
                                   params.dump()));
      return;
    }
    if (!(ScoreTrajectory(wired) == direct)) {
      log->Fail(check, fmt::format("params {}: scored differently after the "
                                   "round trip",
                                   params.dump()));
    }
  } catch (...) {
    log->Fail(check, fmt::format("params {}: {}", params.dump(),
                                 DescribeCurrentException()));
  }
}

void CheckResultRoundTrip(const RewardResult& direct, const json& params,
                          CheckLog* log) {
  const std::string check = "result_json_round_trip";
  log->Pass(check);
  try {
    const RewardResult back = RewardResultFromJson(
        json::parse(RewardResultToJson(direct).dump()), "result");
    if (!(back == direct)) {
      log->Fail(check, OneLine(fmt::format("params {}: {} came back as {}",
                                           params.dump(),
                                           RewardResultToJson(direct).dump(),
                                           RewardResultToJson(back).dump())));
    }
  } catch (...) {
    log->Fail(check, fmt::format("params {}: {}", params.dump(),
                                 DescribeCurrentException()));
  }
}

void CheckGroup(const Trajectory& t, const RewardResult& direct,
                const json& params, CheckLog* log) {
  const std::string check = "group_matches_single";
  log->Pass(check);
  try {
    const std::vector<RewardResult> group = ScoreGroup({t, t, t});
    for (size_t k = 0; k < group.size(); ++k) {
      if (!(group[k] == direct)) {
        log->Fail(check,
                  fmt::format("params {}: trajectory {} of the group scored "
                              "{}, alone {}",
                              params.dump(), k, group[k].total, direct.total));
      }
    }
  } catch (...) {
    log->Fail(check, fmt::format("params {}: {}", params.dump(),
                                 DescribeCurrentException()));
  }
}

// The checks that score: Score directly, then through the composite (the
// path a run and the service take) and the JSON wire.
void CheckScoring(const std::string& plugin, const Reward& reward,
                  const Trajectory& base, const json& params, CheckLog* log) {
  const std::string check = "scores_are_finite";
  log->Pass(check);
  ScoreResult first;
  try {
    first = reward.Score(base, params);
  } catch (...) {
    log->Fail(check, fmt::format("params {}: Score threw {}", params.dump(),
                                 DescribeCurrentException()));
    return;
  }
  if (!first.details.is_object()) {
    log->Fail(check, fmt::format("params {}: details {} are not an object",
                                 params.dump(), first.details.dump()));
  }
  CheckDeterministic(reward, base, params, first, log);
  if (!std::isfinite(first.score)) {
    // Every later check compares scores, and a NaN or infinity also cannot
    // cross the JSON wire: they would all fail for this one reason.
    log->Fail(check, fmt::format("params {}: score {} (the composite and JSON "
                                 "checks need a finite score and did not run "
                                 "on these params)",
                                 params.dump(), first.score));
    return;
  }

  Trajectory t = base;
  t.reward_spec = {{"components",
                    {{{"name", "c"},
                      {"plugin", plugin},
                      {"weight", kComponentWeight},
                      {"params", params}}}},
                   {"success", "c"}};
  RewardResult direct;
  try {
    direct = ScoreTrajectory(t);
  } catch (...) {
    log->Fail("composite_matches_score",
              fmt::format("params {}: ScoreTrajectory threw {}", params.dump(),
                          DescribeCurrentException()));
    return;
  }
  CheckCompositeResult(direct, first, params, log);
  CheckTrajectoryRoundTrip(t, direct, params, log);
  CheckResultRoundTrip(direct, params, log);
  if (!reward.group_level()) CheckGroup(t, direct, params, log);
}

}  // namespace

std::vector<ConformanceResult> CheckRewardConformance(
    const std::string& plugin, const ConformanceCase& samples) {
  const std::unique_ptr<Reward> reward =
      RewardRegistry::Global().Create(plugin);
  CheckLog log;
  CheckNonObjectParams(*reward, &log);
  const bool takes_empty_params = CheckEmptyParams(*reward, &log);
  std::vector<json> scored = CheckValidParams(*reward, samples.valid, &log);
  CheckMalformedParams(*reward, samples.malformed, &log);
  if (samples.valid.empty() && takes_empty_params) {
    scored.push_back(json::object());
  }
  const Trajectory base = SampleTrajectory();
  for (const json& params : scored) {
    CheckScoring(plugin, *reward, base, params, &log);
  }
  return log.Take();
}

}  // namespace clinrl::rewards
