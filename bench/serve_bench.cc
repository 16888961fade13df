// `clinrl bench serve`: concurrent streaming clients against `clinrl serve`'s
// server (serve/completion_server.h) over the ~22M-parameter bench model,
// against batched generation of the same prompts in the same process
// (`clinrl bench generate`'s batch path). The ratio is what the HTTP layer,
// the engine thread and continuous batching cost; time to first token is
// what a client waits.
//
// The model gets a byte-level BPE tokenizer that fills its whole vocabulary
// (every id decodes to text), so each generated token reaches the client as
// a streamed chunk and the first chunk marks the first token.
#include <fmt/format.h>
#include <httplib.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_model.h"
#include "bench/bench_registry.h"
#include "core/error.h"
#include "policy/bpe_tokenizer.h"
#include "policy/generator.h"
#include "policy/model_dir.h"
#include "serve/completion_server.h"

namespace clinrl::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Byte-level BPE over the whole vocabulary: the 256 bytes, then merges of
// two printable ASCII characters ("ab") until vocab_size less the special
// tokens is reached, then ChatML's specials.
std::unique_ptr<policy::BpeTokenizer> FullVocabTokenizer(int64_t vocab_size) {
  const std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>",
                                             "<|im_end|>"};
  const int64_t merges =
      vocab_size - 256 - static_cast<int64_t>(specials.size());
  if (merges < 0 || merges > 94 * 94) {
    throw BadRequest(fmt::format(
        "bench serve: vocab_size {} is not allowed; expected {} to {}",
        vocab_size, 256 + specials.size(), 256 + specials.size() + 94 * 94));
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  for (char a = '!'; a <= '~' && (int64_t)pairs.size() < merges; ++a) {
    for (char b = '!'; b <= '~' && (int64_t)pairs.size() < merges; ++b) {
      pairs.emplace_back(std::string(1, a), std::string(1, b));
    }
  }
  return policy::BpeTokenizer::FromByteMerges(pairs, specials);
}

// Prompt texts of 32 to 64 tokens (two-character tokens, spaces between
// words), one per client, the same in both runs.
std::vector<std::string> PromptTexts(int64_t count, uint64_t seed) {
  policy::SequenceRng rng(seed, 0);
  std::vector<std::string> texts(count);
  for (auto& text : texts) {
    const int64_t words = 8 + static_cast<int64_t>(rng.Next() % 9);
    for (int64_t w = 0; w < words; ++w) {
      if (w > 0) text += ' ';
      for (int c = 0; c < 6; ++c) text += char('a' + rng.Next() % 26);
    }
  }
  return texts;
}

struct ClientResult {
  double first_token_s = -1;  // from the request's start
  double end_s = 0;           // from the benchmark's start
  int64_t completion_tokens = 0;
  std::string error;
};

// Reads the server-sent events of one streamed completion: the first text
// chunk's time, and the token count from the closing usage chunk.
class EventReader {
 public:
  EventReader(Clock::time_point start, ClientResult* result)
      : start_(start), result_(result) {}
  bool Feed(const char* data, size_t size) {
    buffer_.append(data, size);
    size_t end;
    while ((end = buffer_.find("\n\n")) != std::string::npos) {
      OnEvent(buffer_.substr(0, end));
      buffer_.erase(0, end + 2);
    }
    return true;
  }

 private:
  void OnEvent(const std::string& event) {
    if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") return;
    const json chunk = json::parse(event.substr(6), nullptr, false);
    if (chunk.is_discarded()) return;
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      result_->completion_tokens =
          chunk["usage"].value("completion_tokens", int64_t{0});
    }
    const json& choices = chunk.value("choices", json::array());
    if (result_->first_token_s < 0 && !choices.empty() &&
        !choices[0].value("text", std::string()).empty()) {
      result_->first_token_s = Seconds(Clock::now() - start_);
    }
  }
  Clock::time_point start_;
  ClientResult* result_;
  std::string buffer_;
};

// One client: a streamed POST /v1/completions, timed from `start`.
ClientResult RunClient(const std::string& host, int port,
                       const std::string& body, Clock::time_point bench_start) {
  ClientResult result;
  httplib::Client client(host, port);
  client.set_read_timeout(600, 0);
  const auto start = Clock::now();
  EventReader reader(start, &result);
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/completions";
  request.body = body;
  request.set_header("Content-Type", "application/json");
  request.content_receiver = [&reader](const char* data, size_t size, uint64_t,
                                       uint64_t) {
    return reader.Feed(data, size);
  };
  const httplib::Result response = client.send(request);
  result.end_s = Seconds(Clock::now() - bench_start);
  if (!response) {
    result.error = httplib::to_string(response.error());
  } else if (response->status != 200) {
    result.error = fmt::format("HTTP {}", response->status);
  }
  return result;
}

// Every client starts at once; returns their results in order.
std::vector<ClientResult> RunClients(const std::string& host, int port,
                                     const std::vector<std::string>& prompts,
                                     int64_t new_tokens, double* wall_s) {
  std::vector<ClientResult> results(prompts.size());
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (size_t i = 0; i < prompts.size(); ++i) {
    const json body = {{"model", "bench"},
                       {"prompt", prompts[i]},
                       {"max_tokens", new_tokens},
                       {"temperature", 1.0},
                       {"top_p", 0.95},
                       {"seed", i},
                       {"stream", true},
                       {"stream_options", {{"include_usage", true}}}};
    threads.emplace_back([&, i, text = body.dump()] {
      results[i] = RunClient(host, port, text, start);
    });
  }
  for (auto& t : threads) t.join();
  *wall_s = Seconds(Clock::now() - start);
  return results;
}

// The same prompts generated as one batch in this process: tokens/s.
double BatchTokensPerSecond(policy::Transformer& model,
                            const policy::Tokenizer& tokenizer,
                            const std::vector<std::string>& prompts,
                            int64_t new_tokens) {
  std::vector<std::vector<int64_t>> ids;
  for (const auto& p : prompts) ids.push_back(tokenizer.Encode(p));
  policy::SamplingParams sampling;
  sampling.temperature = 1.0;
  sampling.top_p = 0.95;
  sampling.max_new_tokens = new_tokens;
  sampling.stop_token_ids = tokenizer.DefaultStopIds();
  sampling.seed = 1;
  policy::GenerationStats stats;
  const auto t0 = Clock::now();
  policy::Generate(model, ids, sampling, &tokenizer, &stats);
  const double s = Seconds(Clock::now() - t0);
  std::cout << "batch " << prompts.size() << ": " << stats.generated_tokens
            << " tokens in " << s << " s" << std::endl;
  return stats.generated_tokens / s;
}

// Figures of the served run: aggregate tokens/s and time to first token.
json ServedFigures(const std::vector<ClientResult>& results, double wall_s) {
  int64_t tokens = 0;
  std::vector<double> ttft;
  for (const auto& r : results) {
    if (!r.error.empty()) {
      throw InternalError("bench serve: a client failed: " + r.error);
    }
    tokens += r.completion_tokens;
    if (r.first_token_s >= 0) ttft.push_back(r.first_token_s);
  }
  if (ttft.size() != results.size()) {
    throw InternalError(
        fmt::format("bench serve: {} of {} clients received no text",
                    results.size() - ttft.size(), results.size()));
  }
  std::cout << "served: " << tokens << " tokens to " << results.size()
            << " clients in " << wall_s << " s" << std::endl;
  return {{"served_tokens", tokens},
          {"served_wall_s", wall_s},
          {"served_tokens_per_s", tokens / wall_s},
          {"ttft_p50_s", Percentile(ttft, 0.5)},
          {"ttft_p99_s", Percentile(ttft, 0.99)},
          {"ttft_max_s", Percentile(ttft, 1.0)}};
}

// A model folder with the bench model's random weights and the
// full-vocabulary tokenizer, in a fresh temporary folder.
std::string MakeModelDir(const policy::ModelConfig& config) {
  const std::string dir =
      MakeBenchTempDir("bench-serve", "creating a folder for the served model");
  policy::InitModelDir(config, *FullVocabTokenizer(config.vocab_size), dir, 7);
  return dir;
}

json RunServeBench(const BenchOptions& options) {
  const ModelBenchSetup setup = SetUpModelBench(options);
  if (setup.device.is_cuda()) {
    throw BadRequest(
        "bench serve: --device cuda is not supported yet; the "
        "server runs on the CPU");
  }
  const policy::ModelConfig config = BenchModel(options);
  const int64_t clients = IntOption(options, "clients", options.quick ? 8 : 32);
  const int64_t new_tokens =
      IntOption(options, "new_tokens", options.quick ? 16 : 128);
  const std::string dir = MakeModelDir(config);
  json out;
  try {
    policy::Transformer model = policy::LoadModel(dir);
    auto tokenizer = policy::LoadModelTokenizer(dir);
    model->set_precision(setup.precision);
    model->eval();
    torch::NoGradGuard no_grad;
    std::cout << "model: " << config.ParameterCount() << " parameters"
              << std::endl;
    const auto prompts = PromptTexts(clients, 11);
    BatchTokensPerSecond(model, *tokenizer, PromptTexts(2, 99), 8);  // warm-up
    const double batch_tps =
        BatchTokensPerSecond(model, *tokenizer, prompts, new_tokens);

    serve::ServerOptions server_options;
    server_options.port = 0;
    server_options.model_name = "bench";
    server_options.worker.max_batch = std::max<int64_t>(64, clients);
    serve::CompletionServer server(model, std::move(tokenizer),
                                   server_options);
    const std::string url = server.Start();
    const int port = std::stoi(url.substr(url.rfind(':') + 1));
    double wall_s = 0;
    const auto results =
        RunClients("127.0.0.1", port, prompts, new_tokens, &wall_s);
    const json stats = server.Stats();
    server.Stop();
    out = ServedFigures(results, wall_s);
    out["batch_tokens_per_s"] = batch_tps;
    out["served_vs_batch"] =
        out["served_tokens_per_s"].get<double>() / batch_tps;
    out["server_stats"] = stats;
  } catch (...) {
    std::filesystem::remove_all(dir);
    throw;
  }
  std::filesystem::remove_all(dir);
  out["clients"] = clients;
  out["new_tokens"] = new_tokens;
  out["parameters"] = config.ParameterCount();
  out["threads"] = setup.threads;
  out["quick"] = options.quick;
  std::cout << "served/batch " << out["served_vs_batch"] << ", p99 TTFT "
            << out["ttft_p99_s"] << " s" << std::endl;
  return out;
}

}  // namespace

CLINRL_REGISTER_BENCH(
    serve,
    "concurrent streaming clients against clinrl serve, ~22M-parameter model",
    RunServeBench, {"precision", "fp32 or bf16 (bfloat16 autocast)"},
    {"device", "cpu"},
    {"model", "a HF config.json or a run config with policy.init"});

}  // namespace clinrl::bench
