// A reward plug-in library that breaks the conformance suite on purpose, for
// the `clinrl reward check` tests (reward_cli_test.cc): it refuses params that
// are not an object with std::runtime_error instead of BadRequest, accepts
// every object (so no malformed params are refused), and scores NaN. It is
// otherwise a well-formed plug-in: it registers and exports the ABI function.
#include <limits>
#include <memory>
#include <stdexcept>

#include "rewards/plugin_loader.h"
#include "rewards/reward_registry.h"

namespace {

using clinrl::Trajectory;
using clinrl::rewards::json;
using clinrl::rewards::ScoreResult;

class NonconformingReward : public clinrl::rewards::Reward {
 public:
  void ValidateParams(const json& params) const override {
    if (!params.is_object()) throw std::runtime_error("params: not an object");
  }

  ScoreResult Score(const Trajectory&, const json&) const override {
    ScoreResult r;
    r.score = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(nonconforming,
                       [] { return std::make_unique<NonconformingReward>(); });

extern "C" int clinrl_reward_plugin_abi() { return CLINRL_REWARD_PLUGIN_ABI; }
