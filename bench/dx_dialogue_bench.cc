// `clinrl bench dx_dialogue`: what the diagnostic dialogue env costs per
// step, against the trivial echo env in the same run (the env runtime's floor),
// and what its scripted oracle costs per decision. The question is whether
// the env or its oracle could ever be the bottleneck of rollouts that the
// ZeroMQ transport caps at about 80,000 steps/s (docs/envs.md, 5).
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench_registry.h"
#include "envs/dx_dialogue/clinical_case.h"
#include "envs/dx_dialogue/knowledge_base.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"

namespace clinrl::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Timing {
  double env_s = 0, policy_s = 0;
  int64_t steps = 0;
  std::vector<std::vector<std::string>> actions;  // per episode
};

// Plays `episodes` dx_dialogue test tasks with a scripted policy; env time
// and policy time are kept apart, and the actions are kept for replay.
Timing Play(const std::string& policy, int64_t episodes) {
  auto env = envs::EnvRegistry::Global().Create("dx_dialogue");
  const int64_t tasks = env->Spec().splits.at("test");
  Timing t;
  for (int64_t i = 0; i < episodes; ++i) {
    auto p = envs::ScriptedPolicyRegistry::Global().Create(
        "dx_dialogue", policy, static_cast<uint64_t>(i));
    envs::ResetRequest r;
    r.split = "test";
    r.task_index = i % tasks;
    auto start = Clock::now();
    envs::ResetResult reset = env->Reset(r);
    t.env_s += Seconds(Clock::now() - start);
    envs::Observation transcript = reset.observation;
    json info = reset.info;
    t.actions.emplace_back();
    for (int turn = 0; turn < 64; ++turn) {
      start = Clock::now();
      const std::string action = p->Act(transcript, info);
      t.policy_s += Seconds(Clock::now() - start);
      start = Clock::now();
      envs::StepResult s = env->Step(action);
      t.env_s += Seconds(Clock::now() - start);
      ++t.steps;
      t.actions.back().push_back(action);
      transcript.push_back({"assistant", action});
      for (auto& m : s.observation) transcript.push_back(m);
      info = std::move(s.info);
      if (s.terminated || s.truncated) break;
    }
  }
  return t;
}

// The same action stream into the echo env: the runtime's floor per step.
Timing Replay(const std::string& env_name,
              const std::vector<std::vector<std::string>>& actions) {
  auto env = envs::EnvRegistry::Global().Create(env_name);
  const int64_t tasks = env->Spec().splits.at("test");
  Timing t;
  for (size_t i = 0; i < actions.size(); ++i) {
    envs::ResetRequest r;
    r.split = "test";
    r.task_index = static_cast<int64_t>(i) % tasks;
    auto start = Clock::now();
    env->Reset(r);
    t.env_s += Seconds(Clock::now() - start);
    for (const auto& action : actions[i]) {
      start = Clock::now();
      const envs::StepResult s = env->Step(action);
      t.env_s += Seconds(Clock::now() - start);
      ++t.steps;
      if (s.terminated || s.truncated) break;
    }
  }
  return t;
}

json RunDxDialogueBench(const BenchOptions& options) {
  const int64_t episodes = options.quick ? 200 : 2000;
  const auto kb = envs::dx::KnowledgeBase::Default();
  auto start = Clock::now();
  const envs::dx::CaseBank bank(kb, envs::dx::SplitSizes{});
  const double bank_ms = 1e3 * Seconds(Clock::now() - start);
  std::cout << "case bank (2400/240/240 cases): " << bank_ms << " ms\n";

  const Timing random = Play("random", episodes);
  const double dx_steps_per_s = random.steps / random.env_s;
  std::cout << "dx_dialogue, random actions: " << random.steps << " steps, "
            << dx_steps_per_s << " env steps/s\n";
  double echo_steps_per_s = 0;
  if (envs::EnvRegistry::Global().Has("echo")) {
    const Timing echo = Replay("echo", random.actions);
    echo_steps_per_s = echo.steps / echo.env_s;
    std::cout << "echo, same action stream: " << echo.steps << " steps, "
              << echo_steps_per_s << " env steps/s\n";
  }
  const Timing oracle = Play("oracle", episodes);
  const double oracle_act_us = 1e6 * oracle.policy_s / oracle.steps;
  std::cout << "oracle: " << oracle.steps << " decisions, " << oracle_act_us
            << " us per decision, " << oracle.steps / oracle.env_s
            << " env steps/s\n";
  return {{"case_bank_build_ms", bank_ms},
          {"dx_env_steps_per_s", dx_steps_per_s},
          {"echo_env_steps_per_s", echo_steps_per_s},
          {"dx_over_echo_step_time",
           echo_steps_per_s > 0 ? echo_steps_per_s / dx_steps_per_s : 0.0},
          {"oracle_decision_us", oracle_act_us},
          {"oracle_decisions_per_s", 1e6 / oracle_act_us},
          {"oracle_over_env_step_time",
           (oracle.policy_s / oracle.steps) / (random.env_s / random.steps)},
          {"episodes", episodes}};
}

}  // namespace

CLINRL_REGISTER_BENCH(dx_dialogue,
                      "dx_dialogue env step cost vs the echo env, and the "
                      "oracle's decision cost",
                      RunDxDialogueBench);

}  // namespace clinrl::bench
