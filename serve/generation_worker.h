// The engine thread of `clinrl serve`: one thread owns the GenerationEngine
// (which is not thread-safe) and runs it step after step; HTTP handler
// threads hand it jobs through a bounded queue. Between two steps the thread
// admits queued jobs (up to max_batch running sequences), so requests join
// the running batch as they arrive and leave it as they finish: continuous
// batching, not one batch per request.
//
// A job is shared between its handler and the engine thread: the engine
// thread writes each choice's tokens after every step (for streaming) and the
// final outputs; the handler waits on the job's condition variable. A
// failure is caught per job (a prompt the engine refuses fails that request
// alone); an error inside Step fails the jobs of that step and the thread
// goes on with a fresh engine state for the rest.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "policy/generation_engine.h"

namespace clinrl::serve {

struct GenerationJob {
  // Set by the handler before Submit.
  std::vector<std::vector<int64_t>> prompts;  // one per choice
  policy::SamplingParams params;
  uint64_t seed = 0;  // choice i samples from stream (seed, i)
  // Streams read log-probs while a choice runs; other jobs get them when it
  // finishes.
  bool streamed = false;

  // Written by the engine thread under `mu`; `changed` signals each update.
  std::mutex mu;
  std::condition_variable changed;
  std::vector<policy::GenerationOutput> outputs;  // per choice, so far
  // Per choice, one per token of outputs[i] when params.top_logprobs >= 0.
  std::vector<std::vector<policy::TokenLogprobs>> token_logprobs;
  std::vector<bool> finished;
  int64_t remaining = 0;  // choices not finished
  bool failed = false;
  bool bad_request = false;  // the failure is the request's fault
  std::string error;
  int64_t updates = 0;  // bumped on every write, for waiting handlers
  // Set by the handler when its client went away; the engine drops the job
  // at the next step.
  std::atomic<bool> cancelled{false};

  bool done() const { return remaining == 0 || failed; }
};

struct WorkerOptions {
  int64_t max_queue = 256;  // jobs waiting; more are refused (HTTP 429)
  int64_t max_batch = 64;   // sequences running at once
};

struct WorkerStats {
  int64_t jobs = 0;  // admitted
  int64_t failed_jobs = 0;
  int64_t steps = 0;
  int64_t generated_tokens = 0;
  int64_t max_batch = 0;  // most sequences one step ran
  int64_t running = 0;    // sequences running now
  int64_t queued = 0;     // jobs waiting now
};

class GenerationWorker {
 public:
  GenerationWorker(policy::Transformer model,
                   const policy::Tokenizer* tokenizer, WorkerOptions options);
  ~GenerationWorker();

  void Start();
  // Fails what is queued or running ("server stopping") and joins.
  void Stop();
  // False when the queue is full.
  bool Submit(std::shared_ptr<GenerationJob> job);
  WorkerStats stats() const;

 private:
  struct Running {
    std::shared_ptr<GenerationJob> job;
    size_t choice = 0;
  };
  void Loop();
  void Admit();
  bool StartJob(const std::shared_ptr<GenerationJob>& job);
  void RunStep();
  void Publish(const std::vector<policy::FinishedTurn>& finished);
  void Fail(const std::shared_ptr<GenerationJob>& job, const std::string& error,
            bool bad_request);
  void DropJob(const std::shared_ptr<GenerationJob>& job);

  policy::GenerationEngine engine_;
  WorkerOptions options_;
  std::map<int64_t, Running> running_;  // by engine sequence id

  mutable std::mutex mu_;  // guards queue_, stop_ and stats_
  std::condition_variable queued_;
  std::deque<std::shared_ptr<GenerationJob>> queue_;
  bool stop_ = false;
  WorkerStats stats_;
  std::thread thread_;
};

}  // namespace clinrl::serve
