// The FHIR service over HTTP (cpp-httplib), startable and stoppable from C++
// (tests, the bench, the env) and from `clinrl ehr serve`. Resources live
// under /fhir/ (as on MedAgentBench's HAPI server) and at the root. A request
// with the header X-Clinrl-Session reads and writes that session's sandbox.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "envs/ehr_fhir/fhir_service.h"

namespace httplib {
class Server;
}

namespace clinrl::envs::ehr {

struct FhirHttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;      // 0 = an ephemeral port (see port())
  int threads = 16;  // worker threads; each keep-alive client holds one
};

class FhirHttpServer {
 public:
  FhirHttpServer(FhirStore* store, FhirHttpServerOptions options);
  ~FhirHttpServer();  // stops and joins
  FhirHttpServer(const FhirHttpServer&) = delete;
  FhirHttpServer& operator=(const FhirHttpServer&) = delete;

  // Binds (throws IoError naming host:port on failure) and serves on a
  // background thread.
  void Start();
  // Serves on the calling thread until Stop() from another thread.
  void Run();
  void Stop();
  int port() const { return port_; }
  // "http://127.0.0.1:PORT/fhir/"
  std::string base_url() const;

 private:
  void Bind();
  FhirHttpServerOptions options_;
  std::unique_ptr<FhirService> service_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace clinrl::envs::ehr
