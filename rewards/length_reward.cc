// length: DAPO's soft overlong punishment over the episode's policy tokens
// (the token_ids of every assistant turn). With L tokens, max = max_tokens,
// buffer = buffer_tokens:
//   L <= max - buffer        0
//   max - buffer < L <= max  -penalty * (L - (max - buffer)) / buffer
//   L > max                  -penalty
// Params: max_tokens (> 0), buffer_tokens (0..max_tokens), penalty (>= 0,
// default 1).
#include "core/error.h"
#include "core/wire.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

class LengthReward : public Reward {
 public:
  bool bounded_time(const json&) const override { return true; }
  void ValidateParams(const json& params) const override {
    const wire::Fields f(params, "params");
    const int64_t max_tokens = f.Int("max_tokens");
    if (max_tokens <= 0) {
      throw BadRequest(fmt::format(
          "params.max_tokens: expected an integer > 0, got {}", max_tokens));
    }
    const int64_t buffer = f.Int("buffer_tokens", 0);
    if (buffer < 0 || buffer > max_tokens) {
      throw BadRequest(fmt::format(
          "params.buffer_tokens: expected an integer in [0, max_tokens = {}], "
          "got {}",
          max_tokens, buffer));
    }
    const double penalty = f.Double("penalty", 1.0);
    if (!(penalty >= 0.0)) {
      throw BadRequest(fmt::format(
          "params.penalty: expected a number >= 0, got {}", penalty));
    }
  }

  ScoreResult Score(const Trajectory& t, const json& params) const override {
    const wire::Fields f(params, "params");
    const int64_t max_tokens = f.Int("max_tokens");
    const int64_t buffer = f.Int("buffer_tokens", 0);
    const double penalty = f.Double("penalty", 1.0);
    int64_t length = 0;
    for (const Turn& turn : t.turns) {
      if (IsPolicyTurn(turn))
        length += static_cast<int64_t>(turn.token_ids.size());
    }
    const int64_t soft = max_tokens - buffer;
    ScoreResult r;
    if (length > max_tokens) {
      r.score = -penalty;
    } else if (length > soft) {
      r.score = -penalty * static_cast<double>(length - soft) /
                static_cast<double>(buffer);
    }
    r.details = {{"policy_tokens", length},
                 {"max_tokens", max_tokens},
                 {"buffer_tokens", buffer}};
    return r;
  }
};

}  // namespace

CLINRL_REGISTER_REWARD(length, [] { return std::make_unique<LengthReward>(); });

}  // namespace clinrl::rewards
