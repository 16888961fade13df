#include "serve/completion_server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <random>

#include "core/error.h"
#include "core/log.h"

namespace clinrl::serve {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kReplace = Json::error_handler_t::replace;

void Reply(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, kReplace), "application/json");
}

void ReplyError(httplib::Response& res, int status, const std::string& message,
                const std::string& type, const std::string& code = "") {
  Reply(res, status, ErrorBody(message, type, code));
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The job's failure as an HTTP answer.
void ReplyFailure(httplib::Response& res, const GenerationJob& job) {
  if (job.bad_request) {
    ReplyError(res, 400, job.error, "invalid_request_error");
  } else {
    ReplyError(res, 500, job.error, "server_error");
  }
}

// Longest prefix of `text` (at most `n` bytes) that ends on a character
// boundary and not in U+FFFD: the bytes of a character still being
// generated decode as U+FFFD now and as the character later.
size_t StablePrefix(const std::string& text, size_t n) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  n = std::min(n, text.size());
  while (n > 0 && n < text.size() &&
         (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) {
    --n;
  }
  while (n >= 3 && text.compare(n - 3, 3, kReplacement) == 0) n -= 3;
  return n;
}

Clock::duration AsDuration(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(seconds));
}

// A token's bytes; none for the ids a model pads its vocab_size with.
std::string RawBytes(const policy::Tokenizer& tokenizer, int64_t id) {
  return id >= 0 && id < tokenizer.size() ? tokenizer.TokenBytes(id) : "";
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.size() >= prefix.size() &&
         text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

// A request ready for the engine: its choices' token prompts.
struct CompletionServer::Prepared {
  std::vector<std::vector<int64_t>> prompts;  // one per choice
  int64_t prompt_tokens = 0;                  // each distinct prompt once
  std::string id;
  int64_t created = 0;
};

CompletionServer::CompletionServer(policy::Transformer model,
                                   std::unique_ptr<policy::Tokenizer> tokenizer,
                                   ServerOptions options)
    : options_(std::move(options)),
      tokenizer_(std::move(tokenizer)),
      format_(*tokenizer_),
      stop_ids_(format_.StopIds(model->config().eos_token_ids)),
      max_positions_(model->config().max_position_embeddings),
      worker_(model, tokenizer_.get(), options_.worker),
      http_(std::make_unique<httplib::Server>()),
      started_at_(UnixSeconds()) {
  const int threads = std::max(4, options_.http_threads);
  http_->new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  // cpp-httplib listens with a backlog of 5: a burst of clients connecting
  // at once overflows it, the kernel drops their handshakes and they retry a
  // second later (the SYN retransmission timeout), which shows as a
  // one-second time to first token. This hook sees the socket before bind
  // (it replaces the library's default, so it sets SO_REUSEADDR as that
  // does); Start raises the backlog once the library has listened.
  http_->set_socket_options([this](int sock) {
    const int yes = 1;
    CLINRL_CHECK_ERRNO(
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes)) == 0,
        "setsockopt", "setting SO_REUSEADDR on the server socket");
    listen_socket_ = sock;
  });
  Route();
}

CompletionServer::~CompletionServer() { Stop(); }

std::string CompletionServer::Start() {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    if (port < 0) {
      throw IoError(
          fmt::format("serve: binding {} on any port failed", options_.host));
    }
  } else if (!http_->bind_to_port(options_.host, port)) {
    throw IoError(fmt::format("serve: binding {}:{} failed (in use?)",
                              options_.host, port));
  }
  CLINRL_CHECK_ERRNO(
      ::listen(listen_socket_, SOMAXCONN) == 0, "listen",
      fmt::format("raising the backlog of {}:{}", options_.host, port));
  worker_.Start();
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  return fmt::format("http://{}:{}", options_.host, port);
}

void CompletionServer::Stop() {
  worker_.Stop();
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
}

Json CompletionServer::Stats() const {
  const WorkerStats s = worker_.stats();
  return {{"jobs", s.jobs},           {"failed_jobs", s.failed_jobs},
          {"steps", s.steps},         {"generated_tokens", s.generated_tokens},
          {"max_batch", s.max_batch}, {"running", s.running},
          {"queued", s.queued},       {"chat_template", format_.source()}};
}

void CompletionServer::Route() {
  http_->Get(
      "/v1/models", [this](const httplib::Request&, httplib::Response& res) {
        Reply(res, 200,
              {{"object", "list"},
               {"data", Json::array({{{"id", options_.model_name},
                                      {"object", "model"},
                                      {"created", started_at_},
                                      {"owned_by", "clinrl"},
                                      {"max_model_len", max_positions_}}})}});
      });
  http_->Get("/v1/stats",
             [this](const httplib::Request&, httplib::Response& res) {
               Reply(res, 200, Stats());
             });
  http_->Get("/health", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"ok", true}});
  });
  http_->Post("/v1/chat/completions",
              [this](const httplib::Request& req, httplib::Response& res) {
                HandleCompletion(req, res, /*chat=*/true);
              });
  http_->Post("/v1/completions",
              [this](const httplib::Request& req, httplib::Response& res) {
                HandleCompletion(req, res, /*chat=*/false);
              });
  // Anything a handler lets through still becomes an error object.
  http_->set_exception_handler([](const httplib::Request&,
                                  httplib::Response& res,
                                  std::exception_ptr e) {
    std::string message = "unknown error";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      message = x.what();
    } catch (...) {
    }
    ReplyError(res, 500, message, "server_error");
  });
  http_->set_error_handler([](const httplib::Request& req,
                              httplib::Response& res) {
    if (res.status == 404) {
      ReplyError(res, 404,
                 fmt::format("{} {}: no such endpoint", req.method, req.path),
                 "invalid_request_error", "not_found");
    }
  });
}

void CompletionServer::HandleCompletion(const httplib::Request& req,
                                        httplib::Response& res, bool chat) {
  CompletionRequest request;
  Prepared prepared;
  try {
    Json body;
    try {
      body = Json::parse(req.body);
    } catch (const Json::parse_error& e) {
      throw BadRequest(fmt::format("body: not valid JSON ({})", e.what()));
    }
    request = chat ? ParseChatRequest(body) : ParseCompletionRequest(body);
    prepared = Prepare(request);
  } catch (const BadRequest& e) {
    ReplyError(res, 400, e.what(), "invalid_request_error");
    return;
  }
  auto job = std::make_shared<GenerationJob>();
  job->prompts = prepared.prompts;
  job->params = request.sampling;
  job->params.stop_token_ids = stop_ids_;
  job->seed = request.has_seed ? request.sampling.seed : std::random_device{}();
  job->streamed = request.stream;
  if (!worker_.Submit(job)) {
    ReplyError(
        res, 429,
        fmt::format("queue: {} requests are waiting (--max-queue {}); "
                    "retry later",
                    options_.worker.max_queue, options_.worker.max_queue),
        "rate_limit_exceeded", "rate_limit_exceeded");
    return;
  }
  if (request.stream) {
    Stream(job, request, prepared, res);
  } else {
    Answer(job, request, prepared, res);
  }
}

CompletionServer::Prepared CompletionServer::Prepare(
    const CompletionRequest& request) {
  Prepared prepared;
  prepared.id = NextId(request.chat ? "chatcmpl" : "cmpl");
  prepared.created = UnixSeconds();
  const std::vector<std::string> texts =
      request.chat ? std::vector<std::string>{format_.Prompt(request.messages,
                                                             request.tools)}
                   : request.prompts;
  for (size_t p = 0; p < texts.size(); ++p) {
    const std::vector<int64_t> tokens = tokenizer_->Encode(texts[p]);
    const std::string field =
        request.chat
            ? "messages"
            : (texts.size() == 1 ? "prompt" : fmt::format("prompt[{}]", p));
    if (tokens.empty()) {
      throw BadRequest(fmt::format("{}: the prompt has no tokens", field));
    }
    if (static_cast<int64_t>(tokens.size()) >= max_positions_) {
      throw BadRequest(fmt::format(
          "{}: the prompt is {} tokens; the model's max_position_embeddings "
          "is {} (one position is needed for the completion)",
          field, tokens.size(), max_positions_));
    }
    prepared.prompt_tokens += static_cast<int64_t>(tokens.size());
    for (int64_t k = 0; k < request.n; ++k) prepared.prompts.push_back(tokens);
  }
  return prepared;
}

std::string CompletionServer::NextId(const char* prefix) {
  return fmt::format("{}-{:x}{:06x}", prefix, started_at_, next_id_++);
}

ChoiceResult CompletionServer::Result(
    const policy::GenerationOutput& output,
    const std::vector<policy::TokenLogprobs>& token_logprobs,
    const CompletionRequest& request, const std::string& id) const {
  ChoiceResult c;
  c.text = tokenizer_->Decode(output.token_ids, /*skip_special=*/true);
  c.finish_reason = OpenAiFinishReason(output.finish_reason);
  if (output.finish_reason == policy::FinishReason::kStopString) {
    c.text = CutAtStop(c.text, request.sampling.stop_strings);
  }
  if (request.chat && !request.tools.is_null()) {
    ChoiceToolCalls parsed = ChoiceToolCallsOf(c.text, "call_" + id);
    if (!parsed.tool_calls.empty()) {
      c.text = parsed.content;
      c.tool_calls = parsed.tool_calls;
      c.finish_reason = "tool_calls";
    }
  }
  AppendLogprobs(c, output, token_logprobs, request);
  return c;
}

// The reported log-probs are the engine's raw ones (log softmax of the
// logits at temperature 1, before top-p), not output.logprobs (the
// sampler's, at the request's temperature): the top list can only be of one
// distribution, and the sampled token's logprob must equal its entry there.
void CompletionServer::AppendLogprobs(
    ChoiceResult& c, const policy::GenerationOutput& output,
    const std::vector<policy::TokenLogprobs>& token_logprobs,
    const CompletionRequest& request) const {
  if (!request.logprobs) return;
  const size_t count = std::min(output.token_ids.size(), token_logprobs.size());
  for (size_t i = c.logprobs.size(); i < count; ++i) {
    const policy::TokenLogprobs& lp = token_logprobs[i];
    c.token_texts.push_back(tokenizer_->Decode({output.token_ids[i]}));
    c.token_bytes.push_back(RawBytes(*tokenizer_, output.token_ids[i]));
    c.logprobs.push_back(lp.logprob);
    if (request.top_logprobs == 0) continue;
    std::vector<TopLogprob> top;
    for (size_t j = 0; j < lp.top_ids.size(); ++j) {
      top.push_back({tokenizer_->Decode({lp.top_ids[j]}), lp.top_logprobs[j],
                     RawBytes(*tokenizer_, lp.top_ids[j])});
    }
    c.top_logprobs.push_back(std::move(top));
  }
}

void CompletionServer::Answer(const std::shared_ptr<GenerationJob>& job,
                              const CompletionRequest& request,
                              const Prepared& prepared,
                              httplib::Response& res) {
  const auto deadline = Clock::now() + AsDuration(options_.request_timeout_s);
  std::unique_lock<std::mutex> lock(job->mu);
  while (!job->done()) {
    if (job->changed.wait_until(lock, deadline) == std::cv_status::timeout &&
        !job->done()) {
      job->cancelled = true;
      ReplyError(res, 500,
                 fmt::format("request_timeout: no answer within {} s",
                             options_.request_timeout_s),
                 "server_error", "timeout");
      return;
    }
  }
  if (job->failed) {
    ReplyFailure(res, *job);
    return;
  }
  std::vector<ChoiceResult> choices;
  int64_t completion_tokens = 0;
  for (size_t i = 0; i < job->outputs.size(); ++i) {
    choices.push_back(Result(job->outputs[i], job->token_logprobs[i], request,
                             fmt::format("{}_{}", prepared.id, i)));
    completion_tokens += static_cast<int64_t>(job->outputs[i].token_ids.size());
  }
  const Json usage = Usage(prepared.prompt_tokens, completion_tokens);
  Reply(res, 200,
        request.chat
            ? ChatResponse(prepared.id, options_.model_name, prepared.created,
                           choices, request.logprobs, usage)
            : CompletionResponse(prepared.id, options_.model_name,
                                 prepared.created, choices, request.logprobs,
                                 usage));
}

// What one streaming response has sent so far.
struct StreamState {
  std::shared_ptr<GenerationJob> job;
  CompletionRequest request;
  std::string id;
  std::string model;
  int64_t created = 0;
  int64_t prompt_tokens = 0;
  std::vector<std::string> sent;  // text per choice
  std::vector<bool> opened, closed;
  std::vector<ChoiceResult> logged;  // log-probs per choice, so far
  // The job's token log-probs per choice, copied as they arrive.
  std::vector<std::vector<policy::TokenLogprobs>> token_logprobs;
  std::vector<size_t> logprobs_sent;    // tokens whose log-probs went out
  std::vector<size_t> tool_calls_sent;  // per choice
  int64_t seen_updates = -1;
  Clock::time_point deadline;
};

namespace {

std::string Event(const Json& data) {
  return "data: " + data.dump(-1, ' ', false, kReplace) + "\n\n";
}

// Bytes kept back while a choice runs: the start of a stop string must not
// be sent before it is known not to complete one.
size_t HoldBack(const std::vector<std::string>& stops) {
  size_t longest = 0;
  for (const auto& s : stops) longest = std::max(longest, s.size());
  return longest > 0 ? longest - 1 : 0;
}

}  // namespace

void CompletionServer::Stream(const std::shared_ptr<GenerationJob>& job,
                              const CompletionRequest& request,
                              const Prepared& prepared,
                              httplib::Response& res) {
  auto state = std::make_shared<StreamState>();
  state->job = job;
  state->request = request;
  state->id = prepared.id;
  state->model = options_.model_name;
  state->created = prepared.created;
  state->prompt_tokens = prepared.prompt_tokens;
  const size_t n = prepared.prompts.size();
  state->sent.assign(n, "");
  state->opened.assign(n, false);
  state->closed.assign(n, false);
  state->logged.assign(n, ChoiceResult());
  state->token_logprobs.assign(n, {});
  state->logprobs_sent.assign(n, 0);
  state->tool_calls_sent.assign(n, 0);
  state->deadline = Clock::now() + AsDuration(options_.request_timeout_s);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [this, state](size_t, httplib::DataSink& sink) {
        if (!StreamNext(*state, sink)) {
          state->job->cancelled = true;
          return false;
        }
        return true;
      });
}

// Waits for the engine's next update of the job and writes its events; false
// when the client went away or the stream cannot go on.
bool CompletionServer::StreamNext(StreamState& state,
                                  httplib::DataSink& sink) const {
  GenerationJob& job = *state.job;
  std::vector<policy::GenerationOutput> outputs;
  std::vector<bool> finished;
  {
    std::unique_lock<std::mutex> lock(job.mu);
    const bool updated = job.changed.wait_until(lock, state.deadline, [&] {
      return job.updates != state.seen_updates;
    });
    if (!updated) {
      job.failed = true;
      job.error = "request_timeout: the stream ran past its time limit";
    }
    state.seen_updates = job.updates;
    if (job.failed) {
      const std::string event = Event(ErrorBody(
          job.error, job.bad_request ? "invalid_request_error" : "server_error",
          ""));
      sink.write(event.data(), event.size());
      sink.done();
      return true;
    }
    outputs = job.outputs;
    // Only the entries not copied before, under the job's lock.
    for (size_t i = 0; i < job.token_logprobs.size(); ++i) {
      const auto& theirs = job.token_logprobs[i];
      auto& mine = state.token_logprobs[i];
      mine.insert(mine.end(),
                  theirs.begin() + std::min(mine.size(), theirs.size()),
                  theirs.end());
    }
    finished = job.finished;
  }
  std::string events;
  for (size_t i = 0; i < outputs.size(); ++i) {
    events += ChoiceEvents(state, i, outputs[i], state.token_logprobs[i],
                           finished[i]);
  }
  const bool all_done = std::all_of(state.closed.begin(), state.closed.end(),
                                    [](bool closed) { return closed; });
  if (all_done) {
    if (state.request.include_usage) {
      int64_t completion_tokens = 0;
      for (const auto& o : outputs) {
        completion_tokens += static_cast<int64_t>(o.token_ids.size());
      }
      Json last = {{"id", state.id},
                   {"object", state.request.chat ? "chat.completion.chunk"
                                                 : "text_completion"},
                   {"created", state.created},
                   {"model", state.model},
                   {"choices", Json::array()},
                   {"usage", Usage(state.prompt_tokens, completion_tokens)}};
      events += Event(last);
    }
    events += "data: [DONE]\n\n";
  }
  if (!events.empty() && !sink.write(events.data(), events.size())) {
    return false;
  }
  if (all_done) sink.done();
  return true;
}

// The events of choice `i` since the last update: its opening chunk (chat),
// the new text (or, with tools, the text before the first `<tool_call>` and
// then each call whole once its block closes, as vLLM's hermes parser
// streams them), and its closing chunk when it finished. The log-probs of
// the tokens that arrived ride on the next chunk the choice sends.
std::string CompletionServer::ChoiceEvents(
    StreamState& state, size_t i, const policy::GenerationOutput& out,
    const std::vector<policy::TokenLogprobs>& token_logprobs,
    bool finished) const {
  if (state.closed[i]) return "";
  const CompletionRequest& request = state.request;
  const auto index = static_cast<int64_t>(i);
  std::string events;
  if (request.chat && !state.opened[i]) {
    events += Event(ChatChunk(state.id, state.model, state.created, index,
                              {{"role", "assistant"}, {"content", ""}}, ""));
  }
  state.opened[i] = true;
  AppendLogprobs(state.logged[i], out, token_logprobs, request);
  // The log-probs not sent yet, for the next chunk (null when none).
  const auto pending_logprobs = [&]() -> Json {
    const ChoiceResult& logged = state.logged[i];
    const size_t from = state.logprobs_sent[i], to = logged.logprobs.size();
    if (!request.logprobs || from == to) return nullptr;
    state.logprobs_sent[i] = to;
    return request.chat ? ChatLogprobs(logged, from, to)
                        : CompletionLogprobs(logged, from, to);
  };
  const auto chunk = [&](const Json& delta, const std::string& text,
                         const std::string& reason) {
    const Json logprobs = pending_logprobs();
    return Event(request.chat
                     ? ChatChunk(state.id, state.model, state.created, index,
                                 delta, reason, logprobs)
                     : CompletionChunk(state.id, state.model, state.created,
                                       index, text, reason, logprobs));
  };
  std::string text = tokenizer_->Decode(out.token_ids, /*skip_special=*/true);
  const auto& stops = request.sampling.stop_strings;
  if (!finished || out.finish_reason == policy::FinishReason::kStopString) {
    text = CutAtStop(text, stops);
  }
  if (!finished) {
    const size_t hold = HoldBack(stops);
    text.resize(
        StablePrefix(text, text.size() > hold ? text.size() - hold : 0));
  }
  Json tool_calls = Json::array();
  if (request.chat && !request.tools.is_null()) {
    // The same ids as the non-streamed answer's (Result's id_prefix).
    StreamedToolCalls shown = StreamedToolCallsOf(
        text, finished, fmt::format("call_{}_{}", state.id, i));
    text = std::move(shown.content);
    tool_calls = std::move(shown.tool_calls);
  }
  std::string& sent = state.sent[i];
  if (text.size() > sent.size() && StartsWith(text, sent)) {
    const std::string delta = text.substr(sent.size());
    sent = text;
    events += chunk({{"content", delta}}, delta, "");
  }
  for (size_t k = state.tool_calls_sent[i]; k < tool_calls.size(); ++k) {
    Json call = tool_calls[k];
    call["index"] = k;
    events += chunk({{"tool_calls", Json::array({call})}}, "", "");
  }
  state.tool_calls_sent[i] =
      std::max(state.tool_calls_sent[i], tool_calls.size());
  if (finished) {
    const std::string reason = tool_calls.empty()
                                   ? OpenAiFinishReason(out.finish_reason)
                                   : "tool_calls";
    events += chunk(Json::object(), "", reason);
    state.closed[i] = true;
  }
  return events;
}

}  // namespace clinrl::serve
