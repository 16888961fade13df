#include "envs/ehr_fhir/fhir_http_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include "core/error.h"

namespace clinrl::envs::ehr {

FhirHttpServer::FhirHttpServer(FhirStore* store, FhirHttpServerOptions options)
    : options_(std::move(options)),
      server_(std::make_unique<httplib::Server>()) {
  // The base URL is known only once bound; the service is made in Bind().
  service_ = std::make_unique<FhirService>(store, "http://placeholder/fhir/");
  const int threads = options_.threads;
  server_->new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  // Benchmarks and agents reuse one connection for many requests.
  server_->set_keep_alive_max_count(1000000);
  // Small request/response pairs on a kept-alive connection: without
  // TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to each.
  server_->set_tcp_nodelay(true);
  // Stop() waits for idle keep-alive connections up to this long.
  server_->set_keep_alive_timeout(5);
  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    FhirRequest r;
    r.method = req.method;
    r.path = req.path;
    for (const auto& [k, v] : req.params) r.query.emplace_back(k, v);
    r.body = req.body;
    r.session = req.get_header_value("X-Clinrl-Session");
    const FhirResponse out = service_->Handle(r);
    res.status = out.status;
    if (!out.location.empty()) res.set_header("Location", out.location);
    res.set_content(out.body, "application/fhir+json");
  };
  server_->Get(".*", handle);
  server_->Post(".*", handle);
  server_->Put(".*", handle);
  server_->Delete(".*", handle);
  server_->Patch(".*", handle);
}

FhirHttpServer::~FhirHttpServer() { Stop(); }

void FhirHttpServer::Bind() {
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
    if (port_ <= 0) {
      throw IoError(
          fmt::format("ehr serve: cannot bind {} on any port", options_.host));
    }
  } else {
    if (!server_->bind_to_port(options_.host, options_.port)) {
      throw IoError(
          fmt::format("ehr serve: cannot bind {}:{} (in use or not "
                      "permitted)",
                      options_.host, options_.port));
    }
    port_ = options_.port;
  }
  service_ = std::make_unique<FhirService>(service_->store(), base_url());
}

void FhirHttpServer::Start() {
  Bind();
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // listen_after_bind returns at once if the socket is bad; wait until the
  // accept loop runs so a client started next cannot race it.
  for (int i = 0; i < 2000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server_->is_running()) {
    Stop();
    throw IoError(
        fmt::format("ehr serve: server on {} did not start", base_url()));
  }
}

void FhirHttpServer::Run() {
  Bind();
  if (!server_->listen_after_bind()) {
    throw IoError(fmt::format("ehr serve: listening on {} failed", base_url()));
  }
}

void FhirHttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string FhirHttpServer::base_url() const {
  return fmt::format("http://{}:{}/fhir/", options_.host, port_);
}

}  // namespace clinrl::envs::ehr
