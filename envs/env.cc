#include "envs/env.h"

#include <random>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::envs {

json ToJson(const ChatMessage& m) {
  return {{"role", m.role}, {"content", m.content}};
}

json ToJson(const Observation& o) {
  json out = json::array();
  for (const auto& m : o) out.push_back(ToJson(m));
  return out;
}

int64_t TaskIndexOf(const ResetRequest& request, int64_t count) {
  if (request.task_index) {
    const int64_t index = *request.task_index;
    if (index < 0 || index >= count) {
      throw BadRequest(
          fmt::format("reset.task_index: got {}, expected 0..{} for split '{}'",
                      index, count - 1, request.split));
    }
    return index;
  }
  if (request.seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(*request.seed));
    return static_cast<int64_t>(rng() % static_cast<uint64_t>(count));
  }
  return 0;
}

json ToJson(const EnvSpec& s) {
  return {{"name", s.name},
          {"version", s.version},
          {"action_format", s.action_format},
          {"max_turns", s.max_turns},
          {"splits", s.splits},
          {"policies", s.policies},
          {"tools", s.tools}};
}

Observation ObservationFromJson(const json& j, const std::string& path) {
  if (!j.is_array()) {
    throw BadRequest(fmt::format(
        "{}: expected an array of chat messages, got {}", path, j.type_name()));
  }
  Observation out;
  for (size_t i = 0; i < j.size(); ++i) {
    const wire::Fields f(j[i], fmt::format("{}[{}]", path, i));
    out.push_back({f.String("role"), f.String("content")});
  }
  return out;
}

EnvSpec EnvSpecFromJson(const json& j) {
  const wire::Fields f(j, "spec");
  EnvSpec s;
  s.name = f.String("name");
  s.version = f.String("version");
  s.action_format = f.String("action_format");
  s.max_turns = f.Int("max_turns");
  const json& splits = f.Object("splits");
  for (auto it = splits.begin(); it != splits.end(); ++it) {
    if (!it.value().is_number_integer()) {
      throw BadRequest(
          fmt::format("spec.splits.{}: expected an integer task "
                      "count, got {}",
                      it.key(), it.value().dump()));
    }
    s.splits[it.key()] = it.value().get<int64_t>();
  }
  // Optional: servers older than the act op list none.
  if (f.Has("policies")) {
    const json& policies = f.Array("policies");
    for (size_t i = 0; i < policies.size(); ++i) {
      if (!policies[i].is_string()) {
        throw BadRequest(
            fmt::format("spec.policies[{}]: expected a policy "
                        "name (string), got {}",
                        i, policies[i].dump()));
      }
      s.policies.push_back(policies[i].get<std::string>());
    }
  }
  // Optional: servers older than tool calls declare none.
  if (f.Has("tools")) {
    const json& tools = f.Get("tools");
    if (!tools.is_array()) {
      throw BadRequest(fmt::format(
          "spec.tools: expected an array of OpenAI function schemas, got {}",
          tools.type_name()));
    }
    s.tools = tools;
  }
  return s;
}

}  // namespace clinrl::envs
