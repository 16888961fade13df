#include "rewards/reward_wire.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <string_view>
#include <type_traits>

#include "core/error.h"
#include "core/wire.h"
#include "rewards/composite_reward.h"

namespace clinrl::rewards {

namespace {

void AppendString(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (u < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 15]);
        } else {
          out->push_back(c);  // UTF-8 passes through; the server checks it
        }
    }
  }
  out->push_back('"');
}

// JSON has no NaN or infinity; nlohmann writes them as null, and so do we.
template <class Number>
void AppendNumber(Number value, std::string* out) {
  if constexpr (std::is_floating_point_v<Number>) {
    if (!std::isfinite(value)) {
      out->append("null");
      return;
    }
  }
  // fmt's "{}" is the shortest text that reads back as the same value.
  fmt::format_to(std::back_inserter(*out), "{}", value);
}

void AppendKey(const char* key, std::string* out) {
  out->push_back('"');
  out->append(key);
  out->append("\":");
}

}  // namespace

void AppendTrajectoryJson(const Trajectory& t, std::string* out) {
  out->push_back('{');
  AppendKey("episode_id", out);
  AppendString(t.episode_id, out);
  out->push_back(',');
  AppendKey("group_id", out);
  AppendString(t.group_id, out);
  out->push_back(',');
  AppendKey("env", out);
  AppendString(t.env, out);
  out->push_back(',');
  AppendKey("split", out);
  AppendString(t.split, out);
  out->push_back(',');
  AppendKey("task_index", out);
  AppendNumber(t.task_index, out);
  out->push_back(',');
  AppendKey("seed", out);
  AppendNumber(t.seed, out);
  out->push_back(',');
  AppendKey("policy_version", out);
  AppendNumber(t.policy_version, out);
  out->push_back(',');
  AppendKey("turns", out);
  out->push_back('[');
  for (size_t i = 0; i < t.turns.size(); ++i) {
    const Turn& turn = t.turns[i];
    if (i > 0) out->push_back(',');
    out->push_back('{');
    AppendKey("role", out);
    AppendString(turn.role, out);
    out->push_back(',');
    AppendKey("content", out);
    AppendString(turn.content, out);
    if (!turn.token_ids.empty() || !turn.logprobs.empty()) {
      out->push_back(',');
      AppendKey("token_ids", out);
      out->push_back('[');
      for (size_t k = 0; k < turn.token_ids.size(); ++k) {
        if (k > 0) out->push_back(',');
        AppendNumber(turn.token_ids[k], out);
      }
      out->append("],");
      AppendKey("logprobs", out);
      out->push_back('[');
      for (size_t k = 0; k < turn.logprobs.size(); ++k) {
        if (k > 0) out->push_back(',');
        AppendNumber(turn.logprobs[k], out);
      }
      out->push_back(']');
    }
    out->push_back('}');
  }
  out->append("],");
  AppendKey("step_rewards", out);
  out->push_back('[');
  for (size_t k = 0; k < t.step_rewards.size(); ++k) {
    if (k > 0) out->push_back(',');
    AppendNumber(t.step_rewards[k], out);
  }
  out->append("],");
  AppendKey("reward", out);
  out->push_back('{');
  AppendKey("total", out);
  AppendNumber(t.reward.total, out);
  out->push_back(',');
  AppendKey("components", out);
  out->push_back('{');
  bool first = true;
  for (const auto& [name, c] : t.reward.components) {
    if (!first) out->push_back(',');
    first = false;
    AppendString(name, out);
    out->append(":{");
    AppendKey("score", out);
    AppendNumber(c.score, out);
    out->push_back(',');
    AppendKey("weight", out);
    AppendNumber(c.weight, out);
    out->push_back(',');
    AppendKey("details", out);
    out->append(c.details.dump());
    out->push_back('}');
  }
  out->append("}},");
  AppendKey("termination", out);
  AppendString(TerminationName(t.termination), out);
  out->push_back(',');
  AppendKey("timings", out);
  out->push_back('{');
  first = true;
  for (const auto& [name, seconds] : t.timings) {
    if (!first) out->push_back(',');
    first = false;
    AppendString(name, out);
    out->push_back(':');
    AppendNumber(seconds, out);
  }
  out->append("},");
  AppendKey("reward_spec", out);
  out->append(t.reward_spec.dump());
  out->push_back(',');
  AppendKey("info", out);
  out->append(t.info.dump());
  out->push_back('}');
}

std::string EncodeScoreRequest(const Trajectory& trajectory) {
  std::string out = "{\"op\":\"score\",\"trajectory\":";
  out.reserve(8192);
  AppendTrajectoryJson(trajectory, &out);
  out.push_back('}');
  return out;
}

nlohmann::json RewardResultToJson(const RewardResult& result) {
  nlohmann::json components = nlohmann::json::object();
  for (const auto& [name, c] : result.components) {
    components[name] = {
        {"score", c.score}, {"weight", c.weight}, {"details", c.details}};
  }
  return {{"total", result.total},
          {"components", std::move(components)},
          {"flagged", IsFlagged(result)},
          {"errors", ComponentErrors(result)}};
}

RewardResult RewardResultFromJson(const nlohmann::json& j,
                                  const std::string& path) {
  const wire::Fields f(j, path);
  RewardResult r;
  r.total = f.Double("total");
  for (const auto& [name, value] : f.Object("components").items()) {
    const wire::Fields c(value, path + ".components." + name);
    RewardComponent rc;
    rc.score = c.Double("score");
    rc.weight = c.Double("weight");
    if (c.Has("details")) rc.details = c.Get("details");
    r.components[name] = std::move(rc);
  }
  return r;
}

}  // namespace clinrl::rewards
