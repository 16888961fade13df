// `clinrl ehr synth --patients N --seed S --out DIR`: writes a synthetic
// record as NDJSON (one file per resource type).
// `clinrl ehr serve --data DIR --port 8080`: serves a record over FHIR R4
// REST at http://HOST:PORT/fhir/ until SIGINT or SIGTERM.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/command_registry.h"
#include "core/error.h"
#include "envs/ehr_fhir/fhir_http_server.h"
#include "envs/ehr_fhir/synthetic_record.h"

namespace clinrl::cli {
namespace {

struct SynthArgs {
  int64_t patients = 100;
  int64_t seed = 0;
  std::string out;
};

struct ServeArgs {
  std::string data;
  int64_t patients = 100;
  int64_t seed = 0;
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 16;
};

void Synth(const SynthArgs& a) {
  if (a.seed < 0) {
    throw BadRequest(fmt::format("--seed: expected >= 0, got {}", a.seed));
  }
  const auto start = std::chrono::steady_clock::now();
  envs::ehr::SynthOptions options{a.patients, static_cast<uint64_t>(a.seed)};
  const auto resources = envs::ehr::GenerateSyntheticRecord(options);
  envs::ehr::WriteNdjsonDir(resources, a.out, options);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::cout << fmt::format(
                   "wrote {} resources for {} patients (seed {}) to {} in "
                   "{:.2f} s",
                   resources.size(), a.patients, a.seed, a.out, secs)
            << std::endl;
}

void Serve(const ServeArgs& a) {
  if (a.port < 0 || a.port > 65535) {
    throw BadRequest(fmt::format("--port: expected 0..65535, got {}", a.port));
  }
  if (a.threads < 1) {
    throw BadRequest(
        fmt::format("--threads: expected >= 1, got {}", a.threads));
  }
  const auto resources =
      a.data.empty()
          ? envs::ehr::GenerateSyntheticRecord(
                {a.patients,
                 static_cast<uint64_t>(std::max<int64_t>(0, a.seed))})
          : envs::ehr::ReadNdjsonDir(a.data);
  envs::ehr::FhirStore store;
  store.BulkLoad(resources);
  // SIGINT/SIGTERM are taken by a waiting thread, which may call Stop();
  // a signal handler may not.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  const int rc = pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (rc != 0)
    throw InternalError(fmt::format("pthread_sigmask failed: {}", rc));
  envs::ehr::FhirHttpServer server(&store, {a.host, a.port, a.threads});
  server.Start();
  std::cout << fmt::format("serving {} resources at {} (Ctrl-C stops)",
                           store.ResourceCount(), server.base_url())
            << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  std::cout << "stopping on signal " << sig << std::endl;
  server.Stop();
}

void AddEhrCommands(CLI::App& app) {
  auto* ehr = app.add_subcommand("ehr", "the EHR/FHIR environment's tools");
  ehr->require_subcommand(1);

  auto synth_args = std::make_shared<SynthArgs>();
  auto* synth = ehr->add_subcommand(
      "synth", "write a seeded synthetic patient record as FHIR NDJSON");
  synth->add_option("--patients", synth_args->patients, "number of patients")
      ->check(CLI::Range(int64_t{1}, int64_t{10000000}));
  synth->add_option("--seed", synth_args->seed, "random seed");
  synth->add_option("--out", synth_args->out, "output directory")->required();
  synth->callback([synth_args] {
    const int rc = RunCommand([&] { Synth(*synth_args); });
    if (rc != 0) std::exit(rc);
  });

  auto serve_args = std::make_shared<ServeArgs>();
  auto* serve = ehr->add_subcommand(
      "serve", "serve a record over FHIR R4 REST (GET/POST under /fhir/)");
  serve->add_option("--data", serve_args->data,
                    "directory of NDJSON from `clinrl ehr synth` (default: "
                    "generate --patients with --seed)");
  serve
      ->add_option("--patients", serve_args->patients,
                   "patients to generate when --data is not given")
      ->check(CLI::Range(int64_t{1}, int64_t{10000000}));
  serve->add_option("--seed", serve_args->seed, "seed when generating");
  serve->add_option("--host", serve_args->host, "address to bind");
  serve->add_option("--port", serve_args->port, "port (0 = any free port)");
  serve->add_option("--threads", serve_args->threads,
                    "worker threads (each keep-alive client holds one)");
  serve->callback([serve_args] {
    const int rc = RunCommand([&] { Serve(*serve_args); });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(ehr, AddEhrCommands);

}  // namespace clinrl::cli
