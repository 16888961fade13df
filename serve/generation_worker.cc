#include "serve/generation_worker.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"

namespace clinrl::serve {

GenerationWorker::GenerationWorker(policy::Transformer model,
                                   const policy::Tokenizer* tokenizer,
                                   WorkerOptions options)
    : engine_(std::move(model), policy::EngineOptions{}, tokenizer),
      options_(options) {}

GenerationWorker::~GenerationWorker() { Stop(); }

void GenerationWorker::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void GenerationWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  queued_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool GenerationWorker::Submit(std::shared_ptr<GenerationJob> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || static_cast<int64_t>(queue_.size()) >= options_.max_queue) {
      return false;
    }
    const size_t n = job->prompts.size();
    job->outputs.assign(n, policy::GenerationOutput());
    job->token_logprobs.assign(n, {});
    job->finished.assign(n, false);
    job->remaining = static_cast<int64_t>(n);
    queue_.push_back(std::move(job));
    stats_.queued = static_cast<int64_t>(queue_.size());
  }
  queued_.notify_one();
  return true;
}

WorkerStats GenerationWorker::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void GenerationWorker::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Idle: sleep until a job or stop arrives (rechecked every second).
      while (!stop_ && queue_.empty() && running_.empty()) {
        queued_.wait_for(lock, std::chrono::seconds(1));
      }
      if (stop_) break;
    }
    Admit();
    if (!running_.empty()) RunStep();
  }
  // Stopping: every job still queued or running gets an answer.
  std::deque<std::shared_ptr<GenerationJob>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (const auto& job : left) Fail(job, "server stopping", false);
  while (!running_.empty()) {
    Fail(running_.begin()->second.job, "server stopping", false);
  }
}

// Takes queued jobs while their choices fit under max_batch (a job wider than
// max_batch runs alone), so new requests join the batch between steps.
void GenerationWorker::Admit() {
  while (true) {
    std::shared_ptr<GenerationJob> job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) break;
      const auto width = static_cast<int64_t>(queue_.front()->prompts.size());
      const auto running = static_cast<int64_t>(running_.size());
      if (running > 0 && running + width > options_.max_batch) break;
      job = queue_.front();
      queue_.pop_front();
      stats_.queued = static_cast<int64_t>(queue_.size());
    }
    if (job->cancelled) {
      Fail(job, "client went away", false);
      continue;
    }
    if (StartJob(job)) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.jobs += 1;
    }
  }
}

bool GenerationWorker::StartJob(const std::shared_ptr<GenerationJob>& job) {
  try {
    for (size_t i = 0; i < job->prompts.size(); ++i) {
      const int64_t id = engine_.Open(job->seed, i);
      running_[id] = {job, i};
      engine_.StartTurn(
          id, job->prompts[i], job->params,
          job->prompts.size() == 1 ? "prompt" : fmt::format("prompt[{}]", i));
    }
    return true;
  } catch (const BadRequest& e) {
    Fail(job, e.what(), true);
  } catch (const std::exception& e) {
    Fail(job, e.what(), false);
  }
  return false;
}

void GenerationWorker::RunStep() {
  const auto batch = static_cast<int64_t>(running_.size());
  std::vector<policy::FinishedTurn> finished;
  try {
    finished = engine_.Step();
  } catch (const std::exception& e) {
    // The step's state is unknown: fail every job in it, free their
    // sequences, and go on serving the next requests.
    CLINRL_LOG_ERROR("serve: engine step failed: {}", e.what());
    while (!running_.empty()) {
      Fail(running_.begin()->second.job,
           fmt::format("engine step failed: {}", e.what()), false);
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.steps += 1;
    stats_.max_batch = std::max(stats_.max_batch, batch);
    stats_.generated_tokens += batch;
  }
  Publish(finished);
}

// Writes every running choice's tokens so far (streaming handlers read them)
// and the finished ones' outputs, then wakes each job's handler once.
void GenerationWorker::Publish(
    const std::vector<policy::FinishedTurn>& finished) {
  std::map<GenerationJob*, std::shared_ptr<GenerationJob>> touched;
  for (const auto& turn : finished) {
    const Running r = running_.at(turn.sequence);
    {
      std::lock_guard<std::mutex> lock(r.job->mu);
      r.job->outputs[r.choice] = turn.output;
      r.job->token_logprobs[r.choice] = turn.token_logprobs;
      r.job->finished[r.choice] = true;
      r.job->remaining -= 1;
    }
    engine_.Close(turn.sequence);
    running_.erase(turn.sequence);
    touched[r.job.get()] = r.job;
  }
  std::vector<std::shared_ptr<GenerationJob>> cancelled;
  for (const auto& [id, r] : running_) {
    if (r.job->cancelled) {
      cancelled.push_back(r.job);
      continue;
    }
    std::lock_guard<std::mutex> lock(r.job->mu);
    r.job->outputs[r.choice] = engine_.running_output(id);
    if (r.job->streamed && r.job->params.top_logprobs >= 0) {
      // Append the step's new entries: copying the whole list every step
      // would cost the square of the reply's length on the engine thread.
      const auto& all = engine_.running_token_logprobs(id);
      auto& published = r.job->token_logprobs[r.choice];
      published.insert(published.end(),
                       all.begin() + std::min(published.size(), all.size()),
                       all.end());
    }
    touched[r.job.get()] = r.job;
  }
  for (const auto& job : cancelled) DropJob(job);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.running = static_cast<int64_t>(running_.size());
  }
  for (const auto& [ptr, job] : touched) {
    {
      std::lock_guard<std::mutex> lock(job->mu);
      job->updates += 1;
    }
    job->changed.notify_all();
  }
}

void GenerationWorker::DropJob(const std::shared_ptr<GenerationJob>& job) {
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->second.job == job) {
      engine_.Close(it->first);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

void GenerationWorker::Fail(const std::shared_ptr<GenerationJob>& job,
                            const std::string& error, bool bad_request) {
  DropJob(job);
  {
    std::lock_guard<std::mutex> lock(job->mu);
    job->failed = true;
    job->bad_request = bad_request;
    job->error = error;
    job->updates += 1;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.failed_jobs += 1;
  }
  job->changed.notify_all();
}

}  // namespace clinrl::serve
