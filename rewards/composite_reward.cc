#include "rewards/composite_reward.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "rewards/deadline_executor.h"
#include "rewards/reward_registry.h"
#include "rewards/reward_spec.h"

namespace clinrl::rewards {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// Plug-ins are stateless scorers (Score is const), so one instance per name
// serves every thread; it lives as long as the process because a timed-out
// task may still be running inside it.
std::shared_ptr<const Reward> PluginInstance(const std::string& name) {
  static std::mutex mutex;
  static auto* instances =
      new std::map<std::string, std::shared_ptr<const Reward>>();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = instances->find(name);
  if (it != instances->end()) return it->second;
  std::shared_ptr<const Reward> made = RewardRegistry::Global().Create(name);
  instances->emplace(name, made);
  return made;
}

// One component's work: a single result, or one per group member.
using ComponentTask = std::function<std::vector<ScoreResult>()>;

struct Outcome {
  bool finished = false;  // the task returned or threw
  bool timed_out = false;
  std::vector<ScoreResult> results;
  std::string error_code;
  std::string error_message;
};

void RunGuarded(const ComponentTask& task, Outcome* out) {
  try {
    out->results = task();
  } catch (const Error& e) {
    out->error_code = e.code();
    out->error_message = e.what();
  } catch (const std::exception& e) {
    out->error_code = "internal";
    out->error_message = e.what();
  } catch (...) {
    out->error_code = "internal";
    out->error_message = "plug-in threw a non-std::exception";
  }
  out->finished = true;
}

// Runs every task, each with its own deadline measured from when it starts;
// returns when each has finished or overrun. The tasks run one after another
// on one executor thread (one thread hand-off per trajectory, not one per
// component). When a task overruns, the caller records a timeout, abandons
// that thread to the stuck task, and starts a fresh runner on the tasks not
// yet started; the stuck task's late result is dropped.
std::vector<Outcome> RunComponents(std::vector<ComponentTask> tasks,
                                   const std::vector<int64_t>& timeouts_ms) {
  const size_t n = tasks.size();
  std::vector<size_t> deadline_tasks;
  int64_t max_timeout = 0;
  for (size_t i = 0; i < n; ++i) {
    if (timeouts_ms[i] > 0) deadline_tasks.push_back(i);
    max_timeout = std::max(max_timeout, timeouts_ms[i]);
  }
  if (deadline_tasks.empty()) {
    std::vector<Outcome> outcomes(n);
    for (size_t i = 0; i < n; ++i) RunGuarded(tasks[i], &outcomes[i]);
    return outcomes;
  }

  struct Shared {
    std::mutex mutex;
    std::condition_variable progress;
    std::vector<Outcome> outcomes;
    std::vector<ComponentTask> tasks;
    std::vector<size_t> order;  // deadline tasks, in run order
    int64_t generation = 0;     // bumped when a runner is abandoned
    size_t next = 0;            // position in `order` of the next to start
    size_t running = SIZE_MAX;  // task index now running, if any
    Clock::time_point started;
    Clock::time_point last_change = Clock::now();
  };
  auto shared = std::make_shared<Shared>();
  shared->outcomes.resize(n);
  shared->order = deadline_tasks;
  shared->tasks = std::move(tasks);

  auto start_runner = [shared](int64_t generation) {
    DeadlineExecutor::Shared().Post([shared, generation] {
      std::unique_lock<std::mutex> lock(shared->mutex);
      while (shared->generation == generation &&
             shared->next < shared->order.size()) {
        const size_t i = shared->order[shared->next++];
        shared->running = i;
        shared->started = Clock::now();
        shared->last_change = shared->started;
        // The caller may be waiting without a deadline for a task to start.
        shared->progress.notify_all();
        lock.unlock();
        Outcome local;
        RunGuarded(shared->tasks[i], &local);
        lock.lock();
        if (shared->generation != generation) return;  // abandoned
        shared->outcomes[i] = std::move(local);
        shared->running = SIZE_MAX;
        shared->last_change = Clock::now();
        shared->progress.notify_all();
      }
    });
  };
  start_runner(0);

  // Components without a deadline run here while the runner proceeds.
  for (size_t i = 0; i < n; ++i) {
    if (timeouts_ms[i] > 0) continue;
    Outcome local;
    RunGuarded(shared->tasks[i], &local);
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->outcomes[i] = std::move(local);
  }

  std::unique_lock<std::mutex> lock(shared->mutex);
  for (;;) {
    bool all_done = true;
    for (size_t i : deadline_tasks)
      all_done &= shared->outcomes[i].finished || shared->outcomes[i].timed_out;
    if (all_done) break;
    if (shared->running == SIZE_MAX) {
      // Between two tasks, or the runner has not started: normally a matter
      // of microseconds. Should the executor be saturated by stuck plug-ins,
      // give up on what has not started after the longest timeout.
      const auto deadline =
          shared->last_change + std::chrono::milliseconds(max_timeout);
      if (Clock::now() < deadline) {
        shared->progress.wait_until(lock, deadline);
        continue;
      }
      for (size_t i : deadline_tasks) {
        Outcome& o = shared->outcomes[i];
        if (o.finished || o.timed_out) continue;
        o.timed_out = true;
        o.error_code = "timeout";
        o.error_message = fmt::format(
            "not started within {} ms: every scoring thread is busy",
            max_timeout);
      }
      ++shared->generation;
      break;
    }
    const size_t i = shared->running;
    const auto deadline =
        shared->started + std::chrono::milliseconds(timeouts_ms[i]);
    if (Clock::now() < deadline) {
      shared->progress.wait_until(lock, deadline);
      continue;
    }
    Outcome& o = shared->outcomes[i];
    o.timed_out = true;
    o.error_code = "timeout";
    o.error_message =
        fmt::format("did not finish within {} ms", timeouts_ms[i]);
    shared->running = SIZE_MAX;
    shared->last_change = Clock::now();  // the new runner's start-up clock
    start_runner(++shared->generation);
  }
  // Copy out under the lock: an abandoned runner may still look at it.
  return shared->outcomes;
}

RewardComponent ErrorComponent(const ComponentSpec& c, const Outcome& o) {
  RewardComponent rc;
  rc.score = 0.0;
  rc.weight = c.weight;
  rc.details = {{"error",
                 {{"code", o.error_code},
                  {"message", o.error_message},
                  {"plugin", c.plugin}}}};
  return rc;
}

// Specs repeat: every trajectory of a task carries the same one, and a
// rubric's validation costs as much as scoring it. Each thread remembers the
// (plug-in, params) pairs it has validated; a hit needs a hash and a deep
// equality check, so no unvalidated params ever pass for validated ones.
bool ValidatedBefore(const std::string& plugin, const json& params,
                     bool remember) {
  constexpr size_t kMaxEntries = 512;
  thread_local std::unordered_map<size_t,
                                  std::vector<std::pair<std::string, json>>>
      seen;
  thread_local size_t entries = 0;
  const size_t key =
      std::hash<json>{}(params)*31 + std::hash<std::string>{}(plugin);
  auto& bucket = seen[key];
  for (const auto& [p, j] : bucket) {
    if (p == plugin && j == params) return true;
  }
  if (remember) {
    if (entries >= kMaxEntries) {
      seen.clear();
      entries = 0;
    }
    seen[key].emplace_back(plugin, params);
    ++entries;
  }
  return false;
}

struct PreparedSpec {
  RewardSpec spec;
  std::vector<std::shared_ptr<const Reward>> plugins;
};

PreparedSpec Prepare(const json& reward_spec, const std::string& path) {
  PreparedSpec p;
  p.spec = ParseRewardSpec(reward_spec, path);
  for (size_t i = 0; i < p.spec.components.size(); ++i) {
    const ComponentSpec& c = p.spec.components[i];
    std::shared_ptr<const Reward> plugin;
    try {
      plugin = PluginInstance(c.plugin);
      if (!ValidatedBefore(c.plugin, *c.params, false)) {
        plugin->ValidateParams(*c.params);
        ValidatedBefore(c.plugin, *c.params, true);
      }
    } catch (const Error& e) {
      throw BadRequest(fmt::format("{}.components[{}] (\"{}\", plug-in {}): {}",
                                   path, i, c.name, c.plugin, e.what()));
    }
    p.plugins.push_back(std::move(plugin));
  }
  return p;
}

// Bounded plug-ins run inline (0) unless the spec sets a deadline itself.
int64_t TimeoutFor(const ComponentSpec& c, const Reward& plugin,
                   const ScoreOptions& options) {
  if (c.timeout_ms >= 0) return c.timeout_ms;
  return plugin.bounded_time(*c.params) ? 0 : options.timeout_ms;
}

double Total(const RewardResult& r) {
  double total = 0.0;
  for (const auto& [name, c] : r.components) total += c.weight * c.score;
  return total;
}

}  // namespace

RewardResult ScoreTrajectory(std::shared_ptr<const Trajectory> trajectory,
                             const ScoreOptions& options) {
  CLINRL_CHECK(trajectory != nullptr, "ScoreTrajectory: null trajectory");
  auto prepared = std::make_shared<const PreparedSpec>(
      Prepare(trajectory->reward_spec, "trajectory.reward_spec"));
  const auto& components = prepared->spec.components;
  std::vector<ComponentTask> tasks;
  std::vector<int64_t> timeouts;
  for (size_t i = 0; i < components.size(); ++i) {
    timeouts.push_back(
        TimeoutFor(components[i], *prepared->plugins[i], options));
    tasks.push_back([prepared, trajectory, i]() -> std::vector<ScoreResult> {
      const Reward& plugin = *prepared->plugins[i];
      const json& params = *prepared->spec.components[i].params;
      if (plugin.group_level()) {
        return plugin.ScoreGroup({trajectory.get()}, params);
      }
      return {plugin.Score(*trajectory, params)};
    });
  }
  const auto outcomes = RunComponents(std::move(tasks), timeouts);
  RewardResult result;
  for (size_t i = 0; i < components.size(); ++i) {
    const ComponentSpec& c = components[i];
    const Outcome& o = outcomes[i];
    if (!o.error_code.empty()) {
      result.components[c.name] = ErrorComponent(c, o);
    } else if (o.results.size() != 1) {
      Outcome bad = o;
      bad.error_code = "internal";
      bad.error_message =
          fmt::format("plug-in returned {} results for 1", o.results.size());
      result.components[c.name] = ErrorComponent(c, bad);
    } else {
      RewardComponent rc;
      rc.score = o.results[0].score;
      rc.weight = c.weight;
      rc.details = o.results[0].details;
      result.components[c.name] = std::move(rc);
    }
  }
  result.total = Total(result);
  return result;
}

RewardResult ScoreTrajectory(const Trajectory& trajectory,
                             const ScoreOptions& options) {
  return ScoreTrajectory(std::make_shared<const Trajectory>(trajectory),
                         options);
}

std::vector<RewardResult> ScoreGroup(const std::vector<Trajectory>& group,
                                     const ScoreOptions& options) {
  return ScoreGroup(std::make_shared<const std::vector<Trajectory>>(group),
                    options);
}

std::vector<RewardResult> ScoreGroup(
    std::shared_ptr<const std::vector<Trajectory>> members,
    const ScoreOptions& options) {
  CLINRL_CHECK(members != nullptr, "ScoreGroup: null group");
  if (members->empty()) return {};
  std::vector<std::shared_ptr<const PreparedSpec>> prepared;
  for (size_t g = 0; g < members->size(); ++g) {
    prepared.push_back(std::make_shared<const PreparedSpec>(Prepare(
        (*members)[g].reward_spec, fmt::format("group[{}].reward_spec", g))));
    const auto& first = prepared[0]->spec.components;
    const auto& mine = prepared[g]->spec.components;
    bool same = first.size() == mine.size();
    for (size_t i = 0; same && i < first.size(); ++i) {
      same = first[i].name == mine[i].name && first[i].plugin == mine[i].plugin;
    }
    if (!same) {
      throw BadRequest(fmt::format(
          "group[{}].reward_spec.components: expected the same component "
          "names and plug-ins as group[0] (a group shares one task)",
          g));
    }
  }

  // Task list: group-level components once, then each member's own.
  struct Slot {
    size_t component;
    int64_t member;  // -1: the whole group
  };
  std::vector<Slot> slots;
  std::vector<ComponentTask> tasks;
  std::vector<int64_t> timeouts;
  const auto& components = prepared[0]->spec.components;
  for (size_t i = 0; i < components.size(); ++i) {
    const int64_t timeout =
        TimeoutFor(components[i], *prepared[0]->plugins[i], options);
    if (prepared[0]->plugins[i]->group_level()) {
      slots.push_back({i, -1});
      timeouts.push_back(timeout);
      tasks.push_back([p = prepared[0], members, i] {
        std::vector<const Trajectory*> ptrs;
        for (const auto& t : *members) ptrs.push_back(&t);
        return p->plugins[i]->ScoreGroup(ptrs, *p->spec.components[i].params);
      });
      continue;
    }
    for (size_t g = 0; g < members->size(); ++g) {
      slots.push_back({i, static_cast<int64_t>(g)});
      timeouts.push_back(TimeoutFor(prepared[g]->spec.components[i],
                                    *prepared[g]->plugins[i], options));
      tasks.push_back(
          [p = prepared[g], members, i, g]() -> std::vector<ScoreResult> {
            return {p->plugins[i]->Score((*members)[g],
                                         *p->spec.components[i].params)};
          });
    }
  }
  const auto outcomes = RunComponents(std::move(tasks), timeouts);

  std::vector<RewardResult> results(members->size());
  for (size_t s = 0; s < slots.size(); ++s) {
    const size_t i = slots[s].component;
    const Outcome& o = outcomes[s];
    const size_t expected = slots[s].member < 0 ? members->size() : 1;
    Outcome checked = o;
    if (o.error_code.empty() && o.results.size() != expected) {
      checked.error_code = "internal";
      checked.error_message = fmt::format("plug-in returned {} results for {}",
                                          o.results.size(), expected);
    }
    for (size_t k = 0; k < expected; ++k) {
      const size_t g = slots[s].member < 0 ? k : slots[s].member;
      const ComponentSpec& c = prepared[g]->spec.components[i];
      if (!checked.error_code.empty()) {
        results[g].components[c.name] = ErrorComponent(c, checked);
        continue;
      }
      RewardComponent rc;
      rc.score = checked.results[k].score;
      rc.weight = c.weight;
      rc.details = checked.results[k].details;
      results[g].components[c.name] = std::move(rc);
    }
  }
  for (auto& r : results) r.total = Total(r);
  return results;
}

bool IsFlagged(const RewardResult& result) {
  for (const auto& [name, c] : result.components) {
    if (c.details.is_object() && c.details.contains("error")) return true;
  }
  return false;
}

json ComponentErrors(const RewardResult& result) {
  json errors = json::array();
  for (const auto& [name, c] : result.components) {
    if (!c.details.is_object() || !c.details.contains("error")) continue;
    const json& e = c.details["error"];
    errors.push_back({{"component", name},
                      {"code", e.value("code", "internal")},
                      {"message", e.value("message", "")}});
  }
  return errors;
}

bool IsSuccess(const RewardResult& result, const json& reward_spec) {
  if (!reward_spec.is_object() || !reward_spec.contains("success") ||
      !reward_spec["success"].is_string()) {
    return false;
  }
  auto it = result.components.find(reward_spec["success"].get<std::string>());
  if (it == result.components.end()) return false;
  return !(it->second.details.is_object() &&
           it->second.details.contains("error")) &&
         it->second.score >= 1.0;
}

}  // namespace clinrl::rewards
