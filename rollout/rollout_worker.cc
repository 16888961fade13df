#include "rollout/rollout_worker.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "core/log.h"
#include "core/monotonic_clock.h"
#include "core/seeds.h"
#include "policy/generation_engine.h"

namespace clinrl::rollout {

namespace {

enum class Phase {
  kAwaitReset,
  kAwaitPolicy,
  kGenerating,
  kAwaitAction,  // the turn is generated, its action not yet sent
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
  // The engine sequence that holds `tokens`' keys and values from turn to
  // turn (the weights do not change within Run), so a turn prefills only
  // its new tokens.
  int64_t sequence = -1;
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

// The episodes of one RolloutWorker::Run, their engine sequences and their
// env requests in flight. Each method is one part of the loop (reset, start
// turns, step the engine, act, collect the env's replies), so Run reads as
// the loop it is.
class EpisodeBatch {
 public:
  EpisodeBatch(policy::Transformer& model, const policy::Tokenizer& tokenizer,
               const EpisodeTokenizer& episode_tokenizer,
               envs::EnvClient& client, const RolloutOptions& options,
               uint64_t batch_seed)
      : tokenizer_(tokenizer),
        episode_tokenizer_(episode_tokenizer),
        client_(client),
        options_(options),
        batch_seed_(batch_seed),
        stop_ids_(
            episode_tokenizer.format().StopIds(model->config().eos_token_ids)),
        engine_(model, policy::EngineOptions(), &tokenizer) {}

  // group_size episodes per task, in task order, each reset at once.
  void ResetAll(const std::vector<TaskRef>& tasks, int64_t policy_version);
  // Waits until no request is in flight, applying each reply as it comes.
  void Collect();
  // Applies the replies that have arrived once `min_replies` have or
  // `wait_ms` has passed; false when none is in flight.
  bool Poll(size_t min_replies, int64_t wait_ms);
  // Starts the policy turn of every episode awaiting one; returns how many.
  size_t StartTurns();
  // One engine step; each turn that ends in it is recorded and, when
  // `act_at_once`, its action goes out (or the episode is cut).
  void Step(bool act_at_once, RolloutStats& stats);
  bool generating() const { return engine_.busy(); }
  int64_t steps() const { return engine_.stats().steps; }
  // Sends each episode whose turn ended its action, or cuts it when that
  // turn used up the episode's token budget.
  void SubmitActions();
  // Lets the close requests complete so sessions do not linger on the
  // server, then hands the episodes over.
  std::vector<RolloutEpisode> Take(RolloutStats& stats);

 private:
  void Apply(const envs::EnvReply& reply, Episode& e);
  void Act(Episode& e);
  void Finish(Episode& e, Termination why);
  void Cut(Episode& e, Termination why);
  void Track(Episode& e) { waiting_[e.request_id] = e.index; }

  const policy::Tokenizer& tokenizer_;
  const EpisodeTokenizer& episode_tokenizer_;
  envs::EnvClient& client_;
  const RolloutOptions& options_;
  const uint64_t batch_seed_;
  const std::vector<int64_t> stop_ids_;
  policy::GenerationEngine engine_;
  std::vector<Episode> episodes_;
  std::map<int64_t, size_t> by_sequence_;  // engine sequence -> episode
  std::map<uint64_t, size_t> waiting_;     // request id -> episode
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
      // Each episode samples from its own stream, whatever it shares steps
      // with.
      e.sequence = engine_.Open(DeriveSeed(batch_seed_, "sample", 0), e.index);
      by_sequence_[e.sequence] = e.index;
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
  engine_.Close(e.sequence);
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
  while (Poll(waiting_.size(), 100)) {
  }
}

bool EpisodeBatch::Poll(size_t min_replies, int64_t wait_ms) {
  if (waiting_.empty()) return false;
  for (envs::EnvReply& reply : client_.Collect(min_replies, wait_ms)) {
    auto it = waiting_.find(reply.request_id);
    if (it == waiting_.end()) continue;  // a close acknowledgement
    Episode& e = episodes_[it->second];
    waiting_.erase(it);
    Apply(reply, e);
  }
  return true;
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
  const size_t before = e.tokens.size();
  episode_tokenizer_.AppendMessages(observed, &e.tokens, e.trajectory.env);
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
    // The reply the policy will never answer is no part of the training
    // sequence (as EpisodeTokenizer::FromTrajectory rebuilds it): a long one
    // (a search without _count) would otherwise outgrow the model's
    // positions in the learner.
    e.tokens.ids.resize(before);
    e.tokens.loss_mask.resize(before);
    e.tokens.logprobs.resize(before);
    Cut(e, Termination::kMaxTokens);
    return;
  }
  e.phase = Phase::kAwaitPolicy;
}

size_t EpisodeBatch::StartTurns() {
  size_t started = 0;
  for (Episode& e : episodes_) {
    if (e.phase != Phase::kAwaitPolicy) continue;
    // No episode generates past its sequence limit.
    const int64_t left =
        options_.max_tokens_per_episode - static_cast<int64_t>(e.tokens.size());
    policy::SamplingParams params;
    params.temperature = options_.temperature;
    params.top_p = options_.top_p;
    params.top_k = options_.top_k;
    params.max_new_tokens = std::min(options_.max_tokens_per_turn, left);
    params.stop_token_ids = stop_ids_;
    engine_.StartTurn(e.sequence, e.tokens.ids, params);
    e.phase = Phase::kGenerating;
    ++started;
  }
  return started;
}

void EpisodeBatch::Step(bool act_at_once, RolloutStats& stats) {
  for (policy::FinishedTurn& turn : engine_.Step()) {
    Episode& e = episodes_[by_sequence_.at(turn.sequence)];
    const policy::GenerationOutput& out = turn.output;
    stats.generated_tokens += static_cast<int64_t>(out.token_ids.size());
    const std::string text = tokenizer_.Decode(out.token_ids, true);
    e.trajectory.turns.push_back(
        {kPolicyRole, text, out.token_ids, out.logprobs});
    episode_tokenizer_.AppendPolicyTurn(out.token_ids, out.logprobs, &e.tokens);
    e.policy_turns += 1;
    e.phase = Phase::kAwaitAction;
    if (act_at_once) Act(e);
  }
}

void EpisodeBatch::Act(Episode& e) {
  if (static_cast<int64_t>(e.tokens.size()) >=
      options_.max_tokens_per_episode) {
    Cut(e, Termination::kMaxTokens);
    return;
  }
  e.request_id =
      client_.SubmitStep(e.session, e.trajectory.turns.back().content);
  e.phase = Phase::kAwaitStep;
  Track(e);
}

void EpisodeBatch::SubmitActions() {
  for (Episode& e : episodes_) {
    if (e.phase == Phase::kAwaitAction) Act(e);
  }
}

std::vector<RolloutEpisode> EpisodeBatch::Take(RolloutStats& stats) {
  const policy::GenerationStats& generation = engine_.stats();
  stats.prompt_tokens = generation.prompt_tokens;
  stats.cached_prompt_tokens =
      generation.cached_prompt_tokens + generation.shared_prompt_tokens;
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
  o.continuous = config.schedule == "continuous";
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

void RolloutWorker::LearnEnvTools(const std::vector<TaskRef>& tasks) {
  for (const TaskRef& task : tasks) {
    if (episode_tokenizer_.KnowsEnv(task.env)) continue;
    episode_tokenizer_.SetEnvTools(task.env, client_.Spec(task.env).tools);
  }
}

std::vector<RolloutEpisode> RolloutWorker::Run(
    const std::vector<TaskRef>& tasks, uint64_t batch_seed,
    int64_t policy_version, RolloutStats* stats) {
  const double start = MonotonicSeconds();
  LearnEnvTools(tasks);
  RolloutStats local;
  EpisodeBatch batch(model_, tokenizer_, episode_tokenizer_, client_, options_,
                     batch_seed);
  const double env_start = MonotonicSeconds();
  batch.ResetAll(tasks, policy_version);
  if (!options_.continuous) batch.Collect();
  local.env_seconds += MonotonicSeconds() - env_start;

  if (options_.continuous) {
    // Every episode the env has handed back joins the next step; every
    // finished turn's action goes out at once; replies that arrived during
    // a step are applied before the next one.
    for (;;) {
      batch.StartTurns();
      if (batch.generating()) {
        const double gen_start = MonotonicSeconds();
        batch.Step(/*act_at_once=*/true, local);
        local.generate_seconds += MonotonicSeconds() - gen_start;
        batch.Poll(1, 0);
        continue;
      }
      const double wait_start = MonotonicSeconds();
      const bool waiting = batch.Poll(1, 100);
      local.env_seconds += MonotonicSeconds() - wait_start;
      if (!waiting) break;
    }
    local.rounds = batch.steps();
  } else {
    for (int64_t round = 0; batch.StartTurns() > 0; ++round) {
      const double gen_start = MonotonicSeconds();
      while (batch.generating()) batch.Step(/*act_at_once=*/false, local);
      local.generate_seconds += MonotonicSeconds() - gen_start;
      const double step_start = MonotonicSeconds();
      batch.SubmitActions();
      batch.Collect();
      local.env_seconds += MonotonicSeconds() - step_start;
      local.rounds = round + 1;
    }
  }
  std::vector<RolloutEpisode> out = batch.Take(local);
  local.episodes = static_cast<int64_t>(out.size());
  local.seconds = MonotonicSeconds() - start;
  if (stats) *stats = local;
  return out;
}

}  // namespace clinrl::rollout
