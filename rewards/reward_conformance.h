// The reward conformance suite (docs/style.md, 2) as a library, so that one
// implementation serves both tests/conformance/reward_conformance_test.cc
// (every registered plug-in, with its samples from that file's table) and
// `clinrl reward check --plugin libfoo.so` (a researcher's plug-in, with the
// samples given on the command line, or none).
//
// The suite runs against a plug-in registered in RewardRegistry::Global() by
// name. Checks that need no sample always run; the others run when their
// samples are there. With no valid sample, params `{}` are scored when the
// plug-in accepts them, so a plug-in whose params are all optional still gets
// its scores checked. A check reports every sample it failed on, not only the
// first, and an exception out of the plug-in is a failure of the check that
// called it, never an exception out of the suite (a crash in the plug-in
// still ends the process: it runs in this one).
//
// The checks, by the names results carry:
//   rejects_non_object_params   params 42, "x", [] throw BadRequest
//   handles_empty_params        params {} are accepted or throw BadRequest
//   accepts_valid_params        each valid sample is accepted
//   rejects_malformed_params    each malformed sample throws BadRequest whose
//                               message names the sample's field
//   scores_are_finite           Score gives a finite score, object details
//   scores_are_deterministic    the same score and details again, also from
//                               several threads at once
//   trajectory_json_round_trip  the trajectory survives a JSON round trip and
//                               the composite scores it the same afterwards
//   composite_matches_score     through the composite (ScoreTrajectory) the
//                               component scores what Score does, weighted,
//                               and nothing is flagged
//   result_json_round_trip      the composite's result survives a JSON round
//                               trip unchanged
//   group_matches_single        a group of identical trajectories scores each
//                               like the single one (not for group-level
//                               plug-ins, for which identical answers are
//                               their own case)
// The last six run once per scored params, on a fixed sample trajectory; the
// four through the composite only when the score is finite.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::rewards {

struct MalformedParams {
  nlohmann::json params;
  std::string field;  // must appear in the BadRequest's message
};

// Sample params of one plug-in; both lists may be empty.
struct ConformanceCase {
  std::vector<nlohmann::json> valid;
  std::vector<MalformedParams> malformed;
};

// One check that ran, in the order the suite runs them.
struct ConformanceResult {
  std::string check;    // a name from the list above
  std::string failure;  // why it failed, on one line (failing samples
                        // joined by "; "); empty when it passed
  bool passed() const { return failure.empty(); }
};

// Runs the suite on the plug-in registered as `plugin` (NotFound when there
// is none) and returns every check that ran.
std::vector<ConformanceResult> CheckRewardConformance(
    const std::string& plugin, const ConformanceCase& samples);

}  // namespace clinrl::rewards
