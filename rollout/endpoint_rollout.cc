#include "rollout/endpoint_rollout.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "core/chat_conversation.h"
#include "core/error.h"
#include "core/log.h"
#include "core/monotonic_clock.h"
#include "envs/env_client.h"

namespace clinrl::rollout {

using nlohmann::json;

namespace {

// The env's messages, into the transcript and into the conversation the
// endpoint sees.
void Append(const envs::Observation& observation, Trajectory* tr,
            ChatConversation* conversation) {
  std::vector<std::pair<std::string, std::string>> messages;
  for (const auto& m : observation) {
    tr->turns.push_back({m.role, m.content, {}, {}});
    messages.emplace_back(m.role, m.content);
  }
  conversation->AddEnvMessages(messages);
}

// One episode at a time on this thread's env client and chat client.
class EndpointPlayer {
 public:
  EndpointPlayer(ChatClient& chat, envs::EnvClient& env,
                 const RolloutOptions& options,
                 const std::map<std::string, json>& env_tools)
      : chat_(chat), env_(env), options_(options), env_tools_(env_tools) {}

  EndpointEpisode Play(const TaskRef& task, size_t position, int64_t sample,
                       uint64_t seed);

 private:
  // Opens the episode; false when the env refused the reset.
  bool Reset(const TaskRef& task, Trajectory& tr);
  // Plays policy turns until the env ends the episode or a budget cuts it.
  Termination PlayTurns(EndpointEpisode& out, uint64_t request_seed);
  ChatCompletion Ask(const Trajectory& tr, int64_t max_tokens,
                     uint64_t request_seed);
  // The env's truncate op: the final info of an episode this side cut.
  Termination Cut(Trajectory& tr, Termination why);
  void RecordEnvError(Trajectory& tr, const Error& e);

  ChatClient& chat_;
  envs::EnvClient& env_;
  const RolloutOptions& options_;
  const std::map<std::string, json>& env_tools_;
  std::string session_;
  ChatConversation conversation_;  // the episode as the endpoint sees it
};

EndpointEpisode EndpointPlayer::Play(const TaskRef& task, size_t position,
                                     int64_t sample, uint64_t seed) {
  EndpointEpisode out;
  Trajectory& tr = out.trajectory;
  tr.episode_id = fmt::format("{}-{}-{}", seed, position, sample);
  tr.group_id = fmt::format("{}-{}", seed, position);
  tr.env = task.env;
  tr.split = task.split;
  tr.task_index = task.task_index;
  tr.seed = static_cast<int64_t>(seed);
  const double started = MonotonicSeconds();
  session_.clear();
  conversation_ = ChatConversation();
  // The session is closed however the episode ends, an endpoint that
  // failed included, so it does not linger on the env server.
  const auto close = [&] {
    if (session_.empty()) return;
    try {
      env_.Close(session_);
    } catch (const Error& e) {
      CLINRL_LOG_WARN("episode {}: close failed: {}", tr.episode_id, e.what());
    }
    session_.clear();
  };
  try {
    if (Reset(task, tr)) {
      const uint64_t request_seed =
          seed + 1000003ull * position + static_cast<uint64_t>(sample);
      tr.termination = PlayTurns(out, request_seed);
    } else {
      tr.termination = Termination::kEnvError;
    }
  } catch (...) {
    close();
    throw;
  }
  close();
  tr.timings["episode_s"] = MonotonicSeconds() - started;
  return out;
}

bool EndpointPlayer::Reset(const TaskRef& task, Trajectory& tr) {
  envs::ResetRequest request;
  request.split = task.split;
  request.task_index = task.task_index;
  request.options = task.options;
  envs::ResetResult reset;
  try {
    session_ = env_.Reset(task.env, request, &reset);
  } catch (const Error& e) {
    RecordEnvError(tr, e);
    return false;
  }
  Append(reset.observation, &tr, &conversation_);
  if (reset.info.contains("reward_spec")) {
    tr.reward_spec = reset.info["reward_spec"];
  }
  tr.info = reset.info;
  return true;
}

ChatCompletion EndpointPlayer::Ask(const Trajectory& tr, int64_t max_tokens,
                                   uint64_t request_seed) {
  json body = {{"messages", conversation_.messages()},
               {"max_tokens", max_tokens},
               {"temperature", options_.temperature},
               {"seed", request_seed}};
  if (options_.top_p < 1.0) body["top_p"] = options_.top_p;
  const auto tools = env_tools_.find(tr.env);
  if (tools != env_tools_.end() && tools->second.is_array() &&
      !tools->second.empty()) {
    body["tools"] = tools->second;
  }
  // The episode goes into the message; the error keeps its type (a request
  // the server refuses is a BadRequest, an unreachable one an IoError).
  const std::string episode =
      fmt::format("episode {} ({} {} task {})", tr.episode_id, tr.env, tr.split,
                  tr.task_index);
  try {
    return chat_.Complete(std::move(body));
  } catch (const BadRequest& e) {
    throw BadRequest(episode + ": " + e.what());
  } catch (const ConfigError& e) {
    throw ConfigError(episode + ": " + e.what());
  } catch (const Error& e) {
    throw IoError(episode + ": " + e.what());
  }
}

Termination EndpointPlayer::PlayTurns(EndpointEpisode& out,
                                      uint64_t request_seed) {
  Trajectory& tr = out.trajectory;
  const int64_t budget = options_.max_tokens_per_episode;
  for (int64_t turns = 0;; ++turns) {
    if (turns >= options_.max_turns) return Cut(tr, Termination::kMaxTurns);
    ChatCompletion reply =
        Ask(tr, options_.max_tokens_per_turn, request_seed + 7919ull * turns);
    const int64_t prompt = reply.prompt_tokens;
    if (prompt >= budget) {
      if (turns == 0) {
        throw ConfigError(fmt::format(
            "rollout.max_tokens_per_episode: got {}, but the reset prompt of "
            "env '{}' ({} task {}) is {} tokens at {}: no room for a policy "
            "turn",
            budget, tr.env, tr.split, tr.task_index, prompt, chat_.where()));
      }
      return Cut(tr, Termination::kMaxTokens);
    }
    // The rollout worker never generates past the episode budget: ask again
    // for what fits (the same seed gives the same first tokens).
    if (prompt >= 0 && prompt + reply.completion_tokens > budget) {
      reply = Ask(tr, budget - prompt, request_seed + 7919ull * turns);
    }
    const std::string action = conversation_.AddAssistantReply(reply);
    tr.turns.push_back({kPolicyRole, action, {}, {}});
    if (reply.completion_tokens >= 0) {
      out.completion_tokens += reply.completion_tokens;
    }
    // The sequence as the rollout worker counts it under the built-in
    // format (ChatML's close is two tokens): the reply, its end-of-turn
    // token when the reply did not stop on one (a reply of tool calls did),
    // and the newline after it. The endpoint's own template is not known
    // here, so a model whose turns close otherwise is counted within a
    // token of its real length.
    const bool stopped =
        reply.finish_reason == "stop" || reply.finish_reason == "tool_calls";
    const int64_t length =
        prompt + reply.completion_tokens + (stopped ? 0 : 1) + 1;
    if (prompt >= 0 && length >= budget) {
      return Cut(tr, Termination::kMaxTokens);
    }
    envs::StepResult step;
    try {
      step = env_.Step(session_, action);
    } catch (const Error& e) {
      RecordEnvError(tr, e);
      return Termination::kEnvError;
    }
    Append(step.observation, &tr, &conversation_);
    tr.step_rewards.push_back(step.reward);
    tr.info = step.info;
    if (step.terminated) return Termination::kFinished;
    if (step.truncated) return Termination::kMaxTurns;
  }
}

Termination EndpointPlayer::Cut(Trajectory& tr, Termination why) {
  try {
    const envs::StepResult cut = env_.Truncate(session_);
    tr.info = cut.info;
    if (tr.step_rewards.empty()) {
      tr.step_rewards.push_back(cut.reward);
    } else {
      tr.step_rewards.back() += cut.reward;
    }
    return why;
  } catch (const Error& e) {
    RecordEnvError(tr, e);
    return Termination::kEnvError;
  }
}

void EndpointPlayer::RecordEnvError(Trajectory& tr, const Error& e) {
  CLINRL_LOG_WARN("episode {}: env error: {} {}", tr.episode_id, e.code(),
                  e.what());
  tr.info["env_error"] = {{"code", e.code()}, {"message", e.what()}};
}

}  // namespace

std::vector<EndpointEpisode> PlayEndpointEpisodes(
    const EndpointRolloutOptions& endpoint, const RolloutOptions& options,
    const std::vector<TaskRef>& tasks, uint64_t seed) {
  const size_t samples =
      static_cast<size_t>(std::max<int64_t>(1, options.group_size));
  std::vector<EndpointEpisode> out(tasks.size() * samples);
  // Clients are made up front, on this thread, so a bad URL or a missing
  // API key fails before any episode starts.
  const size_t threads = std::min<size_t>(
      out.size(),
      static_cast<size_t>(std::max<int64_t>(1, endpoint.concurrency)));
  std::vector<std::unique_ptr<ChatClient>> chats;
  for (size_t i = 0; i < threads; ++i) {
    chats.push_back(std::make_unique<ChatClient>(endpoint.endpoint));
  }
  std::atomic<size_t> next{0};
  std::mutex failure_mu;
  std::exception_ptr failure;
  std::vector<std::thread> pool;
  for (size_t i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      try {
        envs::EnvClient env({endpoint.env_endpoint, endpoint.env_timeout_ms});
        EndpointPlayer player(*chats[i], env, options, endpoint.env_tools);
        for (size_t k = next++; k < out.size(); k = next++) {
          {
            std::lock_guard<std::mutex> lock(failure_mu);
            if (failure) return;
          }
          out[k] = player.Play(tasks[k / samples], k / samples,
                               static_cast<int64_t>(k % samples), seed);
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (!failure) failure = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return out;
}

}  // namespace clinrl::rollout
