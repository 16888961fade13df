// `clinrl serve MODEL_DIR`: an OpenAI-compatible HTTP server over a model
// folder, with continuous batching (serve/completion_server.h). It prints
// one line with the bound URL (scripts and tests read it) and stops cleanly
// on SIGTERM or SIGINT, answering what is running with an error.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/command_registry.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stop_signal.h"
#include "policy/model_dir.h"
#include "serve/completion_server.h"

namespace clinrl::cli {
namespace {

struct ServeArgs {
  std::string model_dir;
  serve::ServerOptions server;
  std::string dtype = "float32";
  int64_t threads = 0;
};

void CheckArgs(const ServeArgs& a) {
  if (a.server.port < 0 || a.server.port > 65535) {
    throw BadRequest(fmt::format(
        "--port: {} is not allowed; expected 0 (any free port) to 65535",
        a.server.port));
  }
  if (a.server.worker.max_queue < 1) {
    throw BadRequest(
        fmt::format("--max-queue: {} is not allowed; expected >= 1",
                    a.server.worker.max_queue));
  }
  if (a.server.worker.max_batch < 1) {
    throw BadRequest(
        fmt::format("--max-batch: {} is not allowed; expected >= 1",
                    a.server.worker.max_batch));
  }
  if (a.dtype != "float32" && a.dtype != "bfloat16") {
    throw BadRequest(fmt::format(
        "--dtype: \"{}\" is not allowed; expected float32 or bfloat16",
        a.dtype));
  }
}

void RunServe(ServeArgs& a) {
  CheckArgs(a);
  // Before any thread starts, so every thread leaves the signals to the
  // one sigwait thread.
  InstallStopSignalHandlers();
  policy::SetComputeThreads(a.threads);
  if (a.server.model_name.empty()) {
    a.server.model_name =
        std::filesystem::path(a.model_dir).lexically_normal().filename();
    if (a.server.model_name.empty()) {
      a.server.model_name = std::filesystem::path(a.model_dir)
                                .lexically_normal()
                                .parent_path()
                                .filename();
    }
  }
  policy::ModelLoadOptions load;
  load.dtype = a.dtype;
  policy::Transformer model = policy::LoadModel(a.model_dir, load);
  model->eval();
  serve::CompletionServer server(
      model, policy::LoadModelTokenizer(a.model_dir), a.server);
  const std::string url = server.Start();
  std::cout << "clinrl serve: listening on " << url << " (model "
            << a.server.model_name << ")" << std::endl;
  while (!StopRequested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  server.Stop();
  std::cout << "clinrl serve: stopped; " << server.Stats().dump() << std::endl;
}

void AddServeCommand(CLI::App& app) {
  auto* serve = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server for a model folder");
  auto a = std::make_shared<ServeArgs>();
  serve->add_option("MODEL_DIR", a->model_dir, "model folder")->required();
  serve->add_option("--host", a->server.host,
                    "address to bind (default 127.0.0.1: loopback only)");
  serve->add_option("--port", a->server.port,
                    "port (default 8000; 0 = any free port, printed)");
  serve->add_option("--model-name", a->server.model_name,
                    "model id in /v1/models (default: the folder name)");
  serve->add_option("--max-queue", a->server.worker.max_queue,
                    "requests waiting at most; more get HTTP 429");
  serve->add_option("--max-batch", a->server.worker.max_batch,
                    "sequences generating at once");
  serve->add_option("--dtype", a->dtype, "float32 | bfloat16");
  serve->add_option("--threads", a->threads, "intra-op threads, 0 = all cores");
  serve->callback([a] {
    const int rc = RunCommand([&] { RunServe(*a); });
    if (rc != 0) std::exit(rc);
    const int signal = StopSignal();
    if (signal != 0) std::exit(StopExitCode(signal));
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(serve, AddServeCommand);

}  // namespace clinrl::cli
