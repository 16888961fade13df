#include "envs/env_request_handler.h"

#include <algorithm>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::envs {

namespace {

constexpr const char* kOps = "spec, reset, step, truncate, close, health, act";

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string OptionsPath(const EnvServiceOptions& options,
                        const std::string& name) {
  auto given = options.env_options_paths.find(name);
  if (given != options.env_options_paths.end()) return given->second;
  auto listed = std::find(options.envs.begin(), options.envs.end(), name);
  if (listed != options.envs.end()) {
    return fmt::format("envs.{}.options", listed - options.envs.begin());
  }
  return "env_options." + name;
}

json ErrorFromException(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) {
    return wire::ErrorReply(error->code(), error->what());
  }
  return wire::ErrorReply("internal", e.what());
}

}  // namespace

EnvRequestHandler::EnvRequestHandler(EnvServiceOptions options)
    : options_(std::move(options)),
      registry_(options_.registry != nullptr ? options_.registry
                                             : &EnvRegistry::Global()),
      started_(std::chrono::steady_clock::now()) {
  names_ = options_.envs.empty() ? registry_->Names() : options_.envs;
  if (names_.empty()) {
    throw BadRequest("env service: no envs to serve (none registered)");
  }
  for (const auto& [name, unused] : options_.env_options) {
    if (std::find(names_.begin(), names_.end(), name) == names_.end()) {
      throw ConfigError(fmt::format(
          "env options for '{}': that env is not served; served envs: {}", name,
          JoinNames(names_)));
    }
  }
  for (const auto& name : names_) {
    std::unique_ptr<Env> env = TakeEnv(name);
    EnvSpec spec = env->Spec();
    spec.policies = ScriptedPolicyRegistry::Global().PoliciesFor(name);
    spec_replies_[name] = wire::OkReply(ToJson(spec));
    spare_envs_[name].push_back(std::move(env));
  }
}

std::unique_ptr<Env> EnvRequestHandler::TakeEnv(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(spare_mutex_);
    auto& spares = spare_envs_[name];
    if (!spares.empty()) {
      auto env = std::move(spares.back());
      spares.pop_back();
      return env;
    }
  }
  auto it = options_.env_options.find(name);
  std::unique_ptr<Env> env = registry_->Create(
      name, it == options_.env_options.end() ? json::object() : it->second,
      OptionsPath(options_, name));
  CLINRL_CHECK(env != nullptr, "the factory of env '{}' returned null", name);
  return env;
}

void EnvRequestHandler::Recycle(std::shared_ptr<EnvSession> session) {
  std::lock_guard<std::mutex> busy(session->busy);
  session->closed = true;
  if (session->broken || session->env == nullptr) return;
  std::lock_guard<std::mutex> lock(spare_mutex_);
  auto& spares = spare_envs_[session->env_name];
  if (static_cast<int64_t>(spares.size()) < options_.recycle_limit) {
    spares.push_back(std::move(session->env));
  }
}

std::string EnvRequestHandler::Handle(const char* data, size_t size,
                                      const std::string& client) {
  json reply;
  const int64_t limit = options_.max_request_bytes;
  if (!client.empty() && limit > 0 && static_cast<int64_t>(size) > limit) {
    // Not even parsed: the size alone refuses it.
    requests_.fetch_add(1, std::memory_order_relaxed);
    errors_.fetch_add(1, std::memory_order_relaxed);
    reply = wire::ErrorReply(
        "bad_request",
        fmt::format("request: {} bytes, over this server's limit of {} bytes "
                    "per request (max_request_bytes)",
                    size, limit));
    return reply.dump();
  }
  json request = json::parse(data, data + size, nullptr, false);
  if (request.is_discarded()) {
    requests_.fetch_add(1, std::memory_order_relaxed);
    errors_.fetch_add(1, std::memory_order_relaxed);
    std::string shown(data, std::min<size_t>(size, 60));
    reply = wire::ErrorReply(
        "bad_request",
        fmt::format("request: not valid JSON ({} bytes starting '{}'); "
                    "expected an object with an \"op\"",
                    size, shown));
  } else {
    reply = HandleJson(request, client);
  }
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

json EnvRequestHandler::HandleJson(const json& request,
                                   const std::string& client) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  json reply;
  try {
    reply = Dispatch(request, client);
  } catch (const std::exception& e) {
    reply = ErrorFromException(e);
  } catch (...) {
    reply = wire::ErrorReply("internal",
                             "request failed with a non-standard "
                             "exception");
  }
  if (!reply.value("ok", false)) {
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
  // A client that multiplexes without envelopes can match replies by "id".
  if (request.is_object()) {
    auto id = request.find("id");
    if (id != request.end()) reply["id"] = *id;
  }
  return reply;
}

json EnvRequestHandler::Dispatch(const json& request,
                                 const std::string& client) {
  const wire::Fields f(request, "request");
  const std::string op = f.String("op");
  if (op == "step") return Step(request);
  if (op == "reset") return Reset(request, client);
  if (op == "truncate") return Truncate(request);
  if (op == "close") return Close(request);
  if (op == "spec") return Spec(request);
  if (op == "health") return Health();
  if (op == "act") return Act(request);
  throw BadRequest(
      fmt::format("request.op: unknown op '{}'; expected one of {}", op, kOps));
}

const std::string& EnvRequestHandler::EnvNameOf(const json& request) const {
  const wire::Fields f(request, "request");
  if (!f.Has("env")) {
    if (names_.size() == 1) return names_.front();
    throw BadRequest(fmt::format(
        "request.env: required when the server plays several envs; one of {}",
        JoinNames(names_)));
  }
  const std::string name = f.String("env");
  for (const auto& n : names_) {
    if (n == name) return n;
  }
  throw NotFound(
      fmt::format("request.env: '{}' is not served here; served "
                  "envs: {}",
                  name, JoinNames(names_)));
}

json EnvRequestHandler::Spec(const json& request) {
  return spec_replies_.at(EnvNameOf(request));
}

std::shared_ptr<EnvSession> EnvRequestHandler::FindSession(
    const std::string& id) const {
  auto session = table_.Find(id);
  if (session == nullptr) {
    throw NotFound(
        fmt::format("request.session: no session '{}' (closed, reclaimed "
                    "after idling, or of another server instance)",
                    id));
  }
  return session;
}

json EnvRequestHandler::Reset(const json& request, const std::string& client) {
  const wire::Fields f(request, "request");
  ResetRequest reset;
  reset.split = f.String("split", "train");
  if (f.Has("task_index")) reset.task_index = f.Int("task_index");
  if (f.Has("seed")) reset.seed = f.Int("seed");
  if (f.Has("options")) reset.options = f.Object("options");

  // Resetting an open session replays its env (gym's reset on one object).
  if (f.Has("session")) {
    const std::string id = f.String("session");
    auto session = FindSession(id);
    std::lock_guard<std::mutex> busy(session->busy);
    if (session->closed) {
      throw NotFound(
          fmt::format("request.session: session '{}' was closed", id));
    }
    session->last_used_ns.store(EnvSessionTable::NowNs());
    session->policy.reset();  // a new episode gets a freshly seeded policy
    ResetResult result;
    try {
      result = session->env->Reset(reset);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      session->broken = true;
      throw InternalError(
          fmt::format("env '{}' Reset threw: {}", session->env_name, e.what()));
    }
    return wire::OkReply({{"session", session->id},
                          {"observation", ToJson(result.observation)},
                          {"info", std::move(result.info)}});
  }

  const std::string& name = EnvNameOf(request);
  if (table_.size() >= options_.max_sessions) {
    throw InternalError(fmt::format(
        "server holds its maximum of {} sessions; close finished ones",
        options_.max_sessions));
  }
  const int64_t per_client = options_.max_sessions_per_client;
  if (!client.empty() && per_client > 0 &&
      table_.CountOf(client) >= per_client) {
    throw BadRequest(fmt::format(
        "request: this client holds its maximum of {} open sessions "
        "(max_sessions_per_client); close finished ones",
        per_client));
  }
  std::unique_ptr<Env> env = TakeEnv(name);
  ResetResult result;
  try {
    result = env->Reset(reset);
  } catch (const Error&) {
    // A bad split or task index leaves the env as it was: keep it.
    std::lock_guard<std::mutex> lock(spare_mutex_);
    spare_envs_[name].push_back(std::move(env));
    throw;
  } catch (const std::exception& e) {
    throw InternalError(
        fmt::format("env '{}' Reset threw: {}", name, e.what()));
  }
  auto session = table_.Add(name, std::move(env), client);
  return wire::OkReply({{"session", session->id},
                        {"observation", ToJson(result.observation)},
                        {"info", std::move(result.info)}});
}

json EnvRequestHandler::Step(const json& request) {
  const wire::Fields f(request, "request");
  const std::string id = f.String("session");
  const std::string action = f.String("action");
  auto session = FindSession(id);
  std::lock_guard<std::mutex> busy(session->busy);
  if (session->closed) {
    throw NotFound(fmt::format("request.session: session '{}' was closed", id));
  }
  StepResult result;
  try {
    result = session->env->Step(action);
  } catch (const std::exception& e) {
    session->broken = true;
    session->last_used_ns.store(EnvSessionTable::NowNs());
    throw InternalError(
        fmt::format("env '{}' Step threw: {}", session->env_name, e.what()));
  }
  session->last_used_ns.store(EnvSessionTable::NowNs());
  json reply = {{"ok", true},
                {"observation", ToJson(result.observation)},
                {"reward", result.reward},
                {"terminated", result.terminated},
                {"truncated", result.truncated},
                {"info", std::move(result.info)}};
  return reply;
}

json EnvRequestHandler::Act(const json& request) {
  const wire::Fields f(request, "request");
  const std::string id = f.String("session");
  const std::string policy = f.String("policy");
  const Observation transcript =
      ObservationFromJson(f.Array("transcript"), "request.transcript");
  const json info = f.Has("info") ? f.Object("info") : json::object();
  auto session = FindSession(id);
  std::lock_guard<std::mutex> busy(session->busy);
  if (session->closed) {
    throw NotFound(fmt::format("request.session: session '{}' was closed", id));
  }
  session->last_used_ns.store(EnvSessionTable::NowNs());
  if (session->policy == nullptr || session->policy_name != policy) {
    const json options =
        f.Has("options") ? f.Object("options") : json::object();
    session->policy = ScriptedPolicyRegistry::Global().Create(
        session->env_name, policy, static_cast<uint64_t>(f.Int("seed", 0)),
        options, "request.options");
    session->policy_name = policy;
  }
  std::string action;
  try {
    action = session->policy->Act(transcript, info);
  } catch (const std::exception& e) {
    throw InternalError(fmt::format("env '{}' policy '{}' threw: {}",
                                    session->env_name, policy, e.what()));
  }
  return wire::OkReply({{"action", std::move(action)}});
}

json EnvRequestHandler::Truncate(const json& request) {
  const wire::Fields f(request, "request");
  const std::string id = f.String("session");
  auto session = FindSession(id);
  std::lock_guard<std::mutex> busy(session->busy);
  if (session->closed) {
    throw NotFound(fmt::format("request.session: session '{}' was closed", id));
  }
  session->last_used_ns.store(EnvSessionTable::NowNs());
  StepResult result;
  try {
    result = session->env->Truncate();
  } catch (const Error&) {
    // BadRequest for an episode that already ended: the env is still sound.
    throw;
  } catch (const std::exception& e) {
    session->broken = true;
    throw InternalError(fmt::format("env '{}' Truncate threw: {}",
                                    session->env_name, e.what()));
  }
  // The caller scores the episode on this reply: one that does not end it
  // is the env's bug, reported as such rather than passed on.
  if (!result.truncated || result.terminated) {
    session->broken = true;
    throw InternalError(fmt::format(
        "env '{}' Truncate returned terminated={}, truncated={}; expected "
        "terminated=false, truncated=true",
        session->env_name, result.terminated, result.truncated));
  }
  return {{"ok", true},
          {"observation", ToJson(result.observation)},
          {"reward", result.reward},
          {"terminated", false},
          {"truncated", true},
          {"info", std::move(result.info)}};
}

json EnvRequestHandler::Close(const json& request) {
  const wire::Fields f(request, "request");
  const std::string id = f.String("session");
  auto session = table_.Remove(id);
  if (session == nullptr) {
    throw NotFound(
        fmt::format("request.session: no session '{}' to close", id));
  }
  Recycle(std::move(session));
  return wire::OkReply();
}

json EnvRequestHandler::Health() {
  const double uptime =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_)
          .count();
  return wire::OkReply({{"sessions", table_.size()},
                        {"uptime_s", uptime},
                        {"envs", names_},
                        {"requests", requests_.load()},
                        {"errors", errors_.load()},
                        {"reclaimed", reclaimed_.load()}});
}

int64_t EnvRequestHandler::ReclaimIdle() {
  if (options_.idle_timeout_s <= 0) return 0;
  auto idle =
      table_.TakeIdle(EnvSessionTable::NowNs(),
                      static_cast<int64_t>(options_.idle_timeout_s * 1e9));
  for (auto& session : idle) Recycle(std::move(session));
  reclaimed_.fetch_add(static_cast<int64_t>(idle.size()));
  return static_cast<int64_t>(idle.size());
}

EnvServiceStats EnvRequestHandler::stats() const {
  return {requests_.load(), errors_.load(), reclaimed_.load()};
}

}  // namespace clinrl::envs
