// `clinrl serve`: an OpenAI-compatible HTTP server (cpp-httplib) over one
// model folder. Handler threads parse and check a request
// (serve/openai_protocol.h), format and tokenize its prompt, and hand it to
// the engine thread (serve/generation_worker.h), which batches every running
// request into each step; a handler then answers with the whole completion,
// or streams server-sent events as tokens arrive. Nothing a client sends
// stops the server: every handler turns errors into OpenAI error objects.
// The endpoints and their limits are in docs/serve.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "policy/chat_format.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"
#include "serve/generation_worker.h"
#include "serve/openai_protocol.h"

namespace httplib {
class Server;
struct Request;
struct Response;
class DataSink;
}  // namespace httplib

namespace clinrl::serve {

struct StreamState;

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8000;                 // 0 = any free port
  std::string model_name;          // what /v1/models lists
  WorkerOptions worker;
  int http_threads = 64;  // connections served at once; more wait
  double request_timeout_s = 600;
};

class CompletionServer {
 public:
  // The tokenizer carries the model folder's chat template
  // (policy::LoadModelTokenizer), which prompts chat requests.
  CompletionServer(policy::Transformer model,
                   std::unique_ptr<policy::Tokenizer> tokenizer,
                   ServerOptions options);
  ~CompletionServer();

  // Binds the socket and starts the engine and HTTP threads; returns the
  // URL ("http://127.0.0.1:8000"). Throws IoError naming host and port.
  std::string Start();
  // Answers what is running with an error, then closes the socket.
  void Stop();
  nlohmann::json Stats() const;

 private:
  struct Prepared;
  void Route();
  void HandleCompletion(const httplib::Request& req, httplib::Response& res,
                        bool chat);
  Prepared Prepare(const CompletionRequest& request);
  void Answer(const std::shared_ptr<GenerationJob>& job,
              const CompletionRequest& request, const Prepared& prepared,
              httplib::Response& res);
  void Stream(const std::shared_ptr<GenerationJob>& job,
              const CompletionRequest& request, const Prepared& prepared,
              httplib::Response& res);
  bool StreamNext(StreamState& state, httplib::DataSink& sink) const;
  std::string ChoiceEvents(
      StreamState& state, size_t i, const policy::GenerationOutput& out,
      const std::vector<policy::TokenLogprobs>& token_logprobs,
      bool finished) const;
  ChoiceResult Result(const policy::GenerationOutput& output,
                      const std::vector<policy::TokenLogprobs>& token_logprobs,
                      const CompletionRequest& request,
                      const std::string& id) const;
  // Appends to `c` the log-probs of the tokens of `output` it lacks.
  void AppendLogprobs(ChoiceResult& c, const policy::GenerationOutput& output,
                      const std::vector<policy::TokenLogprobs>& token_logprobs,
                      const CompletionRequest& request) const;
  std::string NextId(const char* prefix);

  ServerOptions options_;
  std::unique_ptr<policy::Tokenizer> tokenizer_;
  policy::ChatFormat format_;      // the model's chat template
  std::vector<int64_t> stop_ids_;  // format_'s and the model's eos ids
  int64_t max_positions_;
  GenerationWorker worker_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int listen_socket_ = -1;  // the bound socket, for its backlog
  std::atomic<uint64_t> next_id_{0};
  int64_t started_at_;
};

}  // namespace clinrl::serve
