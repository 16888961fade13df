#include "rollout/rollout_wire.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::rollout {

using nlohmann::json;

namespace {

void CheckOp(const wire::Fields& f, const char* expected) {
  const std::string op = f.String("op");
  if (op != expected) {
    throw BadRequest(
        fmt::format("{}.op: got '{}', expected '{}'", f.path(), op, expected));
  }
}

// Seeds are 64-bit unsigned (SplitMix64 outputs), beyond wire::Fields::Int.
uint64_t Seed(const wire::Fields& f, const char* field) {
  const json& v = f.Get(field);
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(v.get<int64_t>());
  }
  throw BadRequest(
      fmt::format("{}.{}: expected an unsigned 64-bit integer, got {} {}",
                  f.path(), field, v.type_name(), v.dump()));
}

}  // namespace

json WorkRequestToJson(const WorkRequest& request) {
  return {{"op", "work"}, {"worker", request.worker}};
}

WorkRequest WorkRequestFromJson(const json& j, const std::string& path) {
  const wire::Fields f(j, path);
  CheckOp(f, "work");
  WorkRequest r;
  r.worker = f.String("worker");
  return r;
}

json WorkReplyToJson(const WorkReply& reply) {
  if (reply.stop) {
    json j = {{"op", "work"}, {"stop", true}};
    if (!reply.failure.empty()) j["failure"] = reply.failure;
    return wire::OkReply(std::move(j));
  }
  const WorkGroup& g = reply.group;
  return wire::OkReply({{"op", "work"},
                        {"group",
                         {{"key", g.key},
                          {"env", g.task.env},
                          {"split", g.task.split},
                          {"task_index", g.task.task_index},
                          {"options", g.task.options},
                          {"seed", g.seed}}},
                        {"min_version", reply.min_version},
                        {"version", reply.version}});
}

WorkReply WorkReplyFromJson(const json& j, const std::string& path) {
  wire::CheckReply(j, path);
  const wire::Fields f(j, path);
  CheckOp(f, "work");
  WorkReply r;
  r.stop = f.Bool("stop", false);
  if (r.stop) {
    r.failure = f.String("failure", "");
    return r;
  }
  const wire::Fields g(f.Object("group"), path + ".group");
  r.group.key = g.String("key");
  r.group.task.env = g.String("env");
  r.group.task.split = g.String("split");
  r.group.task.task_index = g.Int("task_index");
  r.group.task.options =
      g.Has("options") ? g.Object("options") : json::object();
  r.group.seed = Seed(g, "seed");
  r.min_version = f.Int("min_version");
  r.version = f.Int("version");
  return r;
}

json RolloutStatsToJson(const RolloutStats& stats) {
  return {{"seconds", stats.seconds},
          {"generate_seconds", stats.generate_seconds},
          {"env_seconds", stats.env_seconds},
          {"generated_tokens", stats.generated_tokens},
          {"prompt_tokens", stats.prompt_tokens},
          {"cached_prompt_tokens", stats.cached_prompt_tokens},
          {"rounds", stats.rounds},
          {"episodes", stats.episodes}};
}

RolloutStats RolloutStatsFromJson(const json& j, const std::string& path) {
  const wire::Fields f(j, path);
  RolloutStats s;
  s.seconds = f.Double("seconds", 0.0);
  s.generate_seconds = f.Double("generate_seconds", 0.0);
  s.env_seconds = f.Double("env_seconds", 0.0);
  s.generated_tokens = f.Int("generated_tokens", 0);
  s.prompt_tokens = f.Int("prompt_tokens", 0);
  s.cached_prompt_tokens = f.Int("cached_prompt_tokens", 0);
  s.rounds = f.Int("rounds", 0);
  s.episodes = f.Int("episodes", 0);
  return s;
}

json ResultRequestToJson(const ResultRequest& request) {
  json episodes = json::array();
  for (const Trajectory& t : request.episodes) episodes.push_back(ToJson(t));
  json stats = RolloutStatsToJson(request.stats);
  stats["reward_seconds"] = request.reward_seconds;
  return {{"op", "result"},
          {"worker", request.worker},
          {"key", request.key},
          {"episodes", std::move(episodes)},
          {"stats", std::move(stats)}};
}

ResultRequest ResultRequestFromJson(const json& j, const std::string& path) {
  const wire::Fields f(j, path);
  CheckOp(f, "result");
  ResultRequest r;
  r.worker = f.String("worker");
  r.key = f.String("key");
  const json& episodes = f.Array("episodes");
  for (size_t i = 0; i < episodes.size(); ++i) {
    try {
      r.episodes.push_back(TrajectoryFromJson(episodes[i]));
    } catch (const BadRequest& e) {
      // TrajectoryFromJson names the field inside the record; this names
      // the record.
      throw BadRequest(fmt::format("{}.episodes[{}]: {}", path, i, e.what()));
    }
  }
  if (f.Has("stats")) {
    const std::string stats_path = path + ".stats";
    r.stats = RolloutStatsFromJson(f.Object("stats"), stats_path);
    r.reward_seconds = wire::Fields(f.Object("stats"), stats_path)
                           .Double("reward_seconds", 0.0);
  }
  return r;
}

json ResultReplyToJson(const ResultReply& reply) {
  json body = {{"op", "result"}, {"accepted", reply.accepted}};
  if (!reply.reason.empty()) body["reason"] = reply.reason;
  return wire::OkReply(std::move(body));
}

ResultReply ResultReplyFromJson(const json& j, const std::string& path) {
  wire::CheckReply(j, path);
  const wire::Fields f(j, path);
  CheckOp(f, "result");
  ResultReply r;
  r.accepted = f.Bool("accepted");
  r.reason = f.String("reason", "");
  return r;
}

}  // namespace clinrl::rollout
