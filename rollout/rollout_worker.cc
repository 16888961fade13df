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

enum class Phase {
  kAwaitReset,
  kAwaitPolicy,
  kAwaitStep,
  kAwaitTruncate,
  kDone
};

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
  // Why this worker cut the episode, recorded once the env's truncate reply
  // has brought the final info.
  Termination cut = Termination::kMaxTokens;
};

std::vector<Turn> ToTurns(const envs::Observation& observation) {
  std::vector<Turn> turns;
  for (const auto& m : observation)
    turns.push_back({m.role, m.content, {}, {}});
  return turns;
}

// The episodes of one RolloutWorker::Run and their env requests in flight.
// Each method is one part of a round (reset, generate, act, collect the env's
// replies), so Run reads as the round loop it is.
class EpisodeBatch {
 public:
  EpisodeBatch(policy::Transformer& model, const policy::Tokenizer& tokenizer,
               const EpisodeTokenizer& episode_tokenizer,
               envs::EnvClient& client, const RolloutOptions& options,
               uint64_t batch_seed)
      : model_(model),
        tokenizer_(tokenizer),
        episode_tokenizer_(episode_tokenizer),
        client_(client),
        options_(options),
        batch_seed_(batch_seed),
        stop_ids_(tokenizer.DefaultStopIds()) {}

  // group_size episodes per task, in task order, each reset at once.
  void ResetAll(const std::vector<TaskRef>& tasks, int64_t policy_version);
  // Waits until no request is in flight, applying each reply as it comes.
  void Collect();
  // The episodes awaiting the policy's next turn, in episode order.
  std::vector<size_t> Ready() const;
  // One policy turn for each of `ready`, from batched generation calls.
  void Generate(const std::vector<size_t>& ready, int64_t round,
                RolloutStats& stats);
  // Sends each of `ready` its new turn, or cuts it when that turn used up
  // the episode's token budget.
  void SubmitActions(const std::vector<size_t>& ready);
  // Lets the close requests complete so sessions do not linger on the
  // server, then hands the episodes over.
  std::vector<RolloutEpisode> Take();

 private:
  void Apply(const envs::EnvReply& reply, Episode& e);
  void Finish(Episode& e, Termination why);
  void Cut(Episode& e, Termination why);
  void Track(Episode& e) { waiting_[e.request_id] = e.index; }

  policy::Transformer& model_;
  const policy::Tokenizer& tokenizer_;
  const EpisodeTokenizer& episode_tokenizer_;
  envs::EnvClient& client_;
  const RolloutOptions& options_;
  const uint64_t batch_seed_;
  const std::vector<int64_t> stop_ids_;
  std::vector<Episode> episodes_;
  std::map<uint64_t, size_t> waiting_;  // request id -> episode
};

void EpisodeBatch::ResetAll(const std::vector<TaskRef>& tasks,
                            int64_t policy_version) {
  for (size_t t = 0; t < tasks.size(); ++t) {
    for (int64_t g = 0; g < options_.group_size; ++g) {
      Episode e;
      e.index = episodes_.size();
      Trajectory& tr = e.trajectory;
      tr.episode_id = fmt::format("{}-{}-{}", batch_seed_, t, g);
      tr.group_id = fmt::format("{}-{}", batch_seed_, t);
      tr.env = tasks[t].env;
      tr.split = tasks[t].split;
      tr.task_index = tasks[t].task_index;
      tr.seed = static_cast<int64_t>(batch_seed_);
      tr.policy_version = policy_version;
      episodes_.push_back(std::move(e));
    }
  }
  for (Episode& e : episodes_) {
    const TaskRef& task =
        tasks[e.index / static_cast<size_t>(options_.group_size)];
    envs::ResetRequest request;
    request.split = task.split;
    request.task_index = task.task_index;
    request.options = task.options;
    e.started = MonotonicSeconds();
    e.request_id = client_.SubmitReset(task.env, request);
    Track(e);
  }
}

void EpisodeBatch::Finish(Episode& e, Termination why) {
  if (e.phase == Phase::kDone) return;
  e.trajectory.termination = why;
  e.trajectory.timings["episode_s"] = MonotonicSeconds() - e.started;
  e.phase = Phase::kDone;
  e.kv = policy::SequenceKv();
  if (!e.session.empty()) client_.SubmitClose(e.session);
}

// An episode this worker cuts (its token or turn budget, not the env's) is
// ended by the env as truncated, so it carries the final info (metrics,
// reward spec) that its scoring reads, like any episode the env ended.
void EpisodeBatch::Cut(Episode& e, Termination why) {
  if (e.session.empty()) {
    Finish(e, why);
    return;
  }
  e.cut = why;
  e.phase = Phase::kAwaitTruncate;
  e.request_id = client_.SubmitTruncate(e.session);
  Track(e);
}

void EpisodeBatch::Collect() {
  while (!waiting_.empty()) {
    for (envs::EnvReply& reply : client_.Collect(waiting_.size(), 100)) {
      auto it = waiting_.find(reply.request_id);
      if (it == waiting_.end()) continue;  // a close acknowledgement
      Episode& e = episodes_[it->second];
      waiting_.erase(it);
      Apply(reply, e);
    }
  }
}

void EpisodeBatch::Apply(const envs::EnvReply& reply, Episode& e) {
  if (!reply.ok) {
    CLINRL_LOG_WARN("episode {}: {} failed: {} {}", e.trajectory.episode_id,
                    envs::EnvOpName(reply.op), reply.error_code,
                    reply.error_message);
    e.trajectory.info["env_error"] = {{"code", reply.error_code},
                                      {"message", reply.error_message}};
    if (reply.session_lost) e.session.clear();
    Finish(e, Termination::kEnvError);
    return;
  }
  if (reply.op == envs::EnvOp::kTruncate) {
    // The observation is not recorded: the token sequence is already at its
    // budget, and no one acts on it. The cut's reward belongs to the last
    // env reply, so step_rewards stays one per step.
    e.trajectory.info = reply.info;
    if (e.trajectory.step_rewards.empty()) {
      e.trajectory.step_rewards.push_back(reply.reward);
    } else {
      e.trajectory.step_rewards.back() += reply.reward;
    }
    Finish(e, e.cut);
    return;
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
      Finish(e, reply.terminated ? Termination::kFinished
                                 : Termination::kMaxTurns);
      return;
    }
  }
  if (e.policy_turns >= options_.max_turns) {
    Cut(e, Termination::kMaxTurns);
    return;
  }
  episode_tokenizer_.AppendMessages(observed, &e.tokens);
  const int64_t length = static_cast<int64_t>(e.tokens.size());
  if (length >= options_.max_tokens_per_episode &&
      reply.op == envs::EnvOp::kReset) {
    // Every episode of this task would end before the policy said a word,
    // and training would run on with nothing to learn from.
    throw ConfigError(fmt::format(
        "rollout.max_tokens_per_episode: got {}, but the reset prompt of env "
        "'{}' ({} task {}) is {} tokens: no room for a policy turn",
        options_.max_tokens_per_episode, e.trajectory.env, e.trajectory.split,
        e.trajectory.task_index, length));
  }
  if (length >= options_.max_tokens_per_episode) {
    Cut(e, Termination::kMaxTokens);
    return;
  }
  e.phase = Phase::kAwaitPolicy;
}

std::vector<size_t> EpisodeBatch::Ready() const {
  std::vector<size_t> ready;
  for (const Episode& e : episodes_) {
    if (e.phase == Phase::kAwaitPolicy) ready.push_back(e.index);
  }
  return ready;
}

void EpisodeBatch::Generate(const std::vector<size_t>& ready, int64_t round,
                            RolloutStats& stats) {
  // Group prompts by their new-token budget so that no episode generates
  // past its sequence limit; most rounds have a single budget.
  std::map<int64_t, std::vector<size_t>> by_budget;
  for (size_t i : ready) {
    const int64_t left = options_.max_tokens_per_episode -
                         static_cast<int64_t>(episodes_[i].tokens.size());
    by_budget[std::min(options_.max_tokens_per_turn, left)].push_back(i);
  }
  for (const auto& [budget, members] : by_budget) {
    std::vector<std::vector<int64_t>> prompts;
    std::vector<policy::SequenceKv> kv;
    for (size_t i : members) {
      prompts.push_back(episodes_[i].tokens.ids);
      kv.push_back(std::move(episodes_[i].kv));
    }
    policy::SamplingParams params;
    params.temperature = options_.temperature;
    params.top_p = options_.top_p;
    params.top_k = options_.top_k;
    params.max_new_tokens = budget;
    params.stop_token_ids = stop_ids_;
    params.seed = DeriveSeed(
        batch_seed_, "round",
        static_cast<uint64_t>(round) << 20 | static_cast<uint64_t>(budget));
    torch::NoGradGuard no_grad;
    policy::GenerationStats generation;
    const std::vector<policy::GenerationOutput> outputs = policy::Generate(
        model_, prompts, params, &tokenizer_, &generation, &kv);
    stats.prompt_tokens += generation.prompt_tokens;
    stats.cached_prompt_tokens += generation.cached_prompt_tokens;
    for (size_t k = 0; k < members.size(); ++k) {
      Episode& e = episodes_[members[k]];
      e.kv = std::move(kv[k]);
      const policy::GenerationOutput& out = outputs[k];
      stats.generated_tokens += static_cast<int64_t>(out.token_ids.size());
      const std::string text = tokenizer_.Decode(out.token_ids, true);
      e.trajectory.turns.push_back(
          {kPolicyRole, text, out.token_ids, out.logprobs});
      episode_tokenizer_.AppendPolicyTurn(out.token_ids, out.logprobs,
                                          &e.tokens);
      e.policy_turns += 1;
      e.phase = Phase::kAwaitStep;
    }
  }
}

void EpisodeBatch::SubmitActions(const std::vector<size_t>& ready) {
  for (size_t i : ready) {
    Episode& e = episodes_[i];
    if (static_cast<int64_t>(e.tokens.size()) >=
        options_.max_tokens_per_episode) {
      Cut(e, Termination::kMaxTokens);
      continue;
    }
    e.request_id =
        client_.SubmitStep(e.session, e.trajectory.turns.back().content);
    Track(e);
  }
}

std::vector<RolloutEpisode> EpisodeBatch::Take() {
  if (client_.in_flight() > 0) client_.Collect(client_.in_flight(), 1000);
  std::vector<RolloutEpisode> out;
  out.reserve(episodes_.size());
  for (Episode& e : episodes_) {
    e.trajectory.timings["policy_turns"] = static_cast<double>(e.policy_turns);
    out.push_back({std::move(e.trajectory), std::move(e.tokens)});
  }
  episodes_.clear();
  return out;
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
  EpisodeBatch batch(model_, tokenizer_, episode_tokenizer_, client_, options_,
                     batch_seed);
  // Round 0: reset every episode.
  const double env_start = MonotonicSeconds();
  batch.ResetAll(tasks, policy_version);
  batch.Collect();
  local.env_seconds += MonotonicSeconds() - env_start;

  for (int64_t round = 0;; ++round) {
    const std::vector<size_t> ready = batch.Ready();
    if (ready.empty()) break;
    const double gen_start = MonotonicSeconds();
    batch.Generate(ready, round, local);
    local.generate_seconds += MonotonicSeconds() - gen_start;
    const double step_start = MonotonicSeconds();
    batch.SubmitActions(ready);
    batch.Collect();
    local.env_seconds += MonotonicSeconds() - step_start;
    local.rounds = round + 1;
  }
  std::vector<RolloutEpisode> out = batch.Take();
  local.episodes = static_cast<int64_t>(out.size());
  local.seconds = MonotonicSeconds() - start;
  if (stats) *stats = local;
  return out;
}

}  // namespace clinrl::rollout
