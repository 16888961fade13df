#include "rollout/rollout_worker.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "core/monotonic_clock.h"
#include "core/seeds.h"
#include "policy/generator.h"

namespace clinrl::rollout {

namespace {

enum class Phase { kAwaitReset, kAwaitPolicy, kAwaitStep, kDone };

struct Episode {
  size_t index = 0;
  Phase phase = Phase::kAwaitReset;
  std::string session;
  Trajectory trajectory;
  EpisodeTokens tokens;
  // Keys and values of `tokens` computed in earlier turns of this batch (the
  // weights do not change within Run), so a turn prefills only new tokens.
  policy::SequenceKv kv;
  int64_t policy_turns = 0;
  uint64_t request_id = 0;
  double started = 0;
};

std::vector<Turn> ToTurns(const envs::Observation& observation) {
  std::vector<Turn> turns;
  for (const auto& m : observation)
    turns.push_back({m.role, m.content, {}, {}});
  return turns;
}

}  // namespace

RolloutOptions RolloutOptionsFromConfig(const RolloutConfig& config) {
  RolloutOptions o;
  o.group_size = config.group_size;
  o.max_turns = config.max_turns;
  o.max_tokens_per_turn = config.max_tokens_per_turn;
  o.max_tokens_per_episode = config.max_tokens_per_episode;
  o.temperature = config.temperature;
  o.top_p = config.top_p;
  o.top_k = config.top_k;
  return o;
}

RolloutWorker::RolloutWorker(policy::Transformer model,
                             const policy::Tokenizer& tokenizer,
                             envs::EnvClient& client, RolloutOptions options)
    : model_(std::move(model)),
      tokenizer_(tokenizer),
      episode_tokenizer_(tokenizer),
      client_(client),
      options_(options) {}

std::vector<RolloutEpisode> RolloutWorker::Run(
    const std::vector<TaskRef>& tasks, uint64_t batch_seed,
    int64_t policy_version, RolloutStats* stats) {
  const double start = MonotonicSeconds();
  RolloutStats local;
  std::vector<Episode> episodes;
  for (size_t t = 0; t < tasks.size(); ++t) {
    for (int64_t g = 0; g < options_.group_size; ++g) {
      Episode e;
      e.index = episodes.size();
      Trajectory& tr = e.trajectory;
      tr.episode_id = fmt::format("{}-{}-{}", batch_seed, t, g);
      tr.group_id = fmt::format("{}-{}", batch_seed, t);
      tr.env = tasks[t].env;
      tr.split = tasks[t].split;
      tr.task_index = tasks[t].task_index;
      tr.seed = static_cast<int64_t>(batch_seed);
      tr.policy_version = policy_version;
      episodes.push_back(std::move(e));
    }
  }
  std::map<uint64_t, size_t> waiting;  // request id -> episode

  auto finish = [&](Episode& e, Termination why) {
    if (e.phase == Phase::kDone) return;
    e.trajectory.termination = why;
    e.trajectory.timings["episode_s"] = MonotonicSeconds() - e.started;
    e.phase = Phase::kDone;
    e.kv = policy::SequenceKv();
    if (!e.session.empty()) client_.SubmitClose(e.session);
  };

  // Round 0: reset every episode.
  const double env_start = MonotonicSeconds();
  for (Episode& e : episodes) {
    const TaskRef& task =
        tasks[e.index / static_cast<size_t>(options_.group_size)];
    envs::ResetRequest request;
    request.split = task.split;
    request.task_index = task.task_index;
    request.options = task.options;
    e.started = MonotonicSeconds();
    e.request_id = client_.SubmitReset(task.env, request);
    waiting[e.request_id] = e.index;
  }

  auto collect = [&]() {
    while (!waiting.empty()) {
      for (envs::EnvReply& reply : client_.Collect(waiting.size(), 100)) {
        auto it = waiting.find(reply.request_id);
        if (it == waiting.end()) continue;  // a close acknowledgement
        Episode& e = episodes[it->second];
        waiting.erase(it);
        if (!reply.ok) {
          CLINRL_LOG_WARN("episode {}: {} failed: {} {}",
                          e.trajectory.episode_id, envs::EnvOpName(reply.op),
                          reply.error_code, reply.error_message);
          e.trajectory.info["env_error"] = {{"code", reply.error_code},
                                            {"message", reply.error_message}};
          if (reply.session_lost) e.session.clear();
          finish(e, Termination::kEnvError);
          continue;
        }
        const std::vector<Turn> observed = ToTurns(reply.observation);
        e.trajectory.turns.insert(e.trajectory.turns.end(), observed.begin(),
                                  observed.end());
        if (reply.op == envs::EnvOp::kReset) {
          e.session = reply.session;
          if (reply.info.contains("reward_spec")) {
            e.trajectory.reward_spec = reply.info["reward_spec"];
          }
          e.trajectory.info = reply.info;
        } else {
          e.trajectory.step_rewards.push_back(reply.reward);
          e.trajectory.info = reply.info;
          if (reply.terminated || reply.truncated) {
            finish(e, reply.terminated ? Termination::kFinished
                                       : Termination::kMaxTurns);
            continue;
          }
        }
        if (e.policy_turns >= options_.max_turns) {
          finish(e, Termination::kMaxTurns);
          continue;
        }
        episode_tokenizer_.AppendMessages(observed, &e.tokens);
        if (static_cast<int64_t>(e.tokens.size()) >=
            options_.max_tokens_per_episode) {
          finish(e, Termination::kMaxTokens);
          continue;
        }
        e.phase = Phase::kAwaitPolicy;
      }
    }
  };
  collect();
  local.env_seconds += MonotonicSeconds() - env_start;

  const std::vector<int64_t> stop_ids = tokenizer_.DefaultStopIds();
  for (int64_t round = 0;; ++round) {
    std::vector<size_t> ready;
    for (const Episode& e : episodes) {
      if (e.phase == Phase::kAwaitPolicy) ready.push_back(e.index);
    }
    if (ready.empty()) break;
    // Group prompts by their new-token budget so that no episode generates
    // past its sequence limit; most rounds have a single budget.
    std::map<int64_t, std::vector<size_t>> by_budget;
    for (size_t i : ready) {
      const int64_t left = options_.max_tokens_per_episode -
                           static_cast<int64_t>(episodes[i].tokens.size());
      by_budget[std::min(options_.max_tokens_per_turn, left)].push_back(i);
    }
    const double gen_start = MonotonicSeconds();
    for (const auto& [budget, members] : by_budget) {
      std::vector<std::vector<int64_t>> prompts;
      std::vector<policy::SequenceKv> kv;
      for (size_t i : members) {
        prompts.push_back(episodes[i].tokens.ids);
        kv.push_back(std::move(episodes[i].kv));
      }
      policy::SamplingParams params;
      params.temperature = options_.temperature;
      params.top_p = options_.top_p;
      params.top_k = options_.top_k;
      params.max_new_tokens = budget;
      params.stop_token_ids = stop_ids;
      params.seed = DeriveSeed(
          batch_seed, "round",
          static_cast<uint64_t>(round) << 20 | static_cast<uint64_t>(budget));
      torch::NoGradGuard no_grad;
      policy::GenerationStats generation;
      const std::vector<policy::GenerationOutput> outputs = policy::Generate(
          model_, prompts, params, &tokenizer_, &generation, &kv);
      local.prompt_tokens += generation.prompt_tokens;
      local.cached_prompt_tokens += generation.cached_prompt_tokens;
      for (size_t k = 0; k < members.size(); ++k) {
        Episode& e = episodes[members[k]];
        e.kv = std::move(kv[k]);
        const policy::GenerationOutput& out = outputs[k];
        local.generated_tokens += static_cast<int64_t>(out.token_ids.size());
        const std::string text = tokenizer_.Decode(out.token_ids, true);
        e.trajectory.turns.push_back(
            {kPolicyRole, text, out.token_ids, out.logprobs});
        episode_tokenizer_.AppendPolicyTurn(out.token_ids, out.logprobs,
                                            &e.tokens);
        e.policy_turns += 1;
        e.phase = Phase::kAwaitStep;
      }
    }
    local.generate_seconds += MonotonicSeconds() - gen_start;
    const double step_start = MonotonicSeconds();
    for (size_t i : ready) {
      Episode& e = episodes[i];
      if (static_cast<int64_t>(e.tokens.size()) >=
          options_.max_tokens_per_episode) {
        finish(e, Termination::kMaxTokens);
        continue;
      }
      e.request_id =
          client_.SubmitStep(e.session, e.trajectory.turns.back().content);
      waiting[e.request_id] = e.index;
    }
    collect();
    local.env_seconds += MonotonicSeconds() - step_start;
    local.rounds = round + 1;
  }
  // Let the close requests complete so sessions do not linger on the server.
  if (client_.in_flight() > 0) client_.Collect(client_.in_flight(), 1000);

  std::vector<RolloutEpisode> out;
  out.reserve(episodes.size());
  for (Episode& e : episodes) {
    e.trajectory.timings["policy_turns"] = static_cast<double>(e.policy_turns);
    out.push_back({std::move(e.trajectory), std::move(e.tokens)});
  }
  local.episodes = static_cast<int64_t>(out.size());
  local.seconds = MonotonicSeconds() - start;
  if (stats) *stats = local;
  return out;
}

}  // namespace clinrl::rollout
