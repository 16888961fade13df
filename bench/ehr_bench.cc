// `clinrl bench ehr`: patient+code Observation searches against the embedded
// FHIR server over HTTP keep-alive on loopback, from concurrent clients, on
// a generated record (1000 patients by default). Also runs the same searches
// in-process (no HTTP) in the same run, to show what the transport costs.
#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>

#include "bench/bench_registry.h"
#include "core/error.h"
#include "envs/ehr_fhir/fhir_http_server.h"
#include "envs/ehr_fhir/synthetic_record.h"

namespace clinrl::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace ehr = envs::ehr;

const char* kCodes[] = {ehr::loinc::kMagnesium,  ehr::loinc::kPotassium,
                        ehr::loinc::kSodium,     ehr::loinc::kGlucose,
                        ehr::loinc::kCreatinine, ehr::loinc::kHbA1c};

std::string Query(const std::vector<std::string>& patients, uint64_t i) {
  // A fixed pseudo-random walk over (patient, code) pairs.
  const uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ULL;
  return fmt::format("patient={}&code=http://loinc.org|{}&_format=json",
                     patients[(h >> 20) % patients.size()],
                     kCodes[(h >> 8) % 6]);
}

nlohmann::json RunEhrBench(const BenchOptions& o) {
  const int64_t patients = IntOption(o, "patients", o.quick ? 100 : 1000);
  const int64_t clients = IntOption(o, "clients", 8);
  const double seconds =
      static_cast<double>(IntOption(o, "seconds", o.quick ? 1 : 5));
  if (patients < 1 || clients < 1 || seconds <= 0) {
    throw BadRequest("--opt patients, clients and seconds must be positive");
  }

  auto t0 = Clock::now();
  const auto record = ehr::GenerateSyntheticRecord({patients, 0});
  const double synth_s =
      std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  ehr::FhirStore store;
  store.BulkLoad(record);
  const double load_s =
      std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<std::string> ids;
  for (const auto& r : record) {
    if (r["resourceType"] == "Patient") ids.push_back(r["id"]);
  }
  std::cout
      << fmt::format(
             "record: {} patients, {} resources; synth {:.2f} s, load {:.2f} s",
             patients, record.size(), synth_s, load_s)
      << std::endl;

  // In-process: the same service code without HTTP, one thread per client.
  ehr::FhirService service(&store, "http://localhost/fhir/");
  auto run_clients = [&](auto&& one_search) {
    std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
    std::atomic<int64_t> errors{0}, entries{0};
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    const auto stop = start + std::chrono::duration<double>(seconds);
    for (int64_t c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        auto& lat = latencies[static_cast<size_t>(c)];
        for (uint64_t i = static_cast<uint64_t>(c) * 1000003;
             Clock::now() < stop; ++i) {
          const auto q0 = Clock::now();
          const int64_t n = one_search(static_cast<size_t>(c), Query(ids, i));
          lat.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - q0)
                  .count());
          if (n < 0)
            ++errors;
          else
            entries += n;
        }
      });
    }
    for (auto& t : threads) t.join();
    const double wall =
        std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    return nlohmann::json{
        {"searches", all.size()},
        {"searches_per_s", static_cast<double>(all.size()) / wall},
        {"p50_ms", Percentile(all, 0.50)},
        {"p99_ms", Percentile(all, 0.99)},
        {"errors", errors.load()},
        {"mean_entries", all.empty() ? 0.0
                                     : static_cast<double>(entries.load()) /
                                           static_cast<double>(all.size())}};
  };
  auto count_entries = [](const std::string& body) -> int64_t {
    int64_t n = 0;
    for (size_t p = body.find("\"fullUrl\""); p != std::string::npos;
         p = body.find("\"fullUrl\"", p + 1)) {
      ++n;
    }
    return n;
  };

  const nlohmann::json in_process =
      run_clients([&](size_t, const std::string& q) -> int64_t {
        const auto r = service.Handle(
            {"GET", "Observation", ehr::ParseQueryString(q), "", ""});
        return r.status == 200 ? count_entries(r.body) : -1;
      });
  std::cout << "in-process: " << in_process.dump() << std::endl;

  ehr::FhirHttpServer server(&store,
                             {"127.0.0.1", 0, static_cast<int>(clients) + 4});
  server.Start();
  std::vector<std::unique_ptr<httplib::Client>> http_clients;
  for (int64_t c = 0; c < clients; ++c) {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", server.port());
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);
    http_clients.push_back(std::move(client));
  }
  const nlohmann::json http =
      run_clients([&](size_t c, const std::string& q) -> int64_t {
        std::string target = "/fhir/Observation?";
        for (const auto& [k, v] : ehr::ParseQueryString(q)) {
          target += ehr::PercentEncode(k) + "=" + ehr::PercentEncode(v) + "&";
        }
        auto res = http_clients[c]->Get(target.c_str());
        return res && res->status == 200 ? count_entries(res->body) : -1;
      });
  // Closing the clients first lets Stop() return without waiting out the
  // keep-alive timeout.
  http_clients.clear();
  server.Stop();
  std::cout << "http: " << http.dump() << std::endl;

  return {{"patients", patients},
          {"resources", record.size()},
          {"clients", clients},
          {"seconds", seconds},
          {"synth_s", synth_s},
          {"load_s", load_s},
          {"searches_per_s", http["searches_per_s"]},
          {"p50_ms_search", http["p50_ms"]},
          {"p99_ms_search", http["p99_ms"]},
          {"errors", http["errors"]},
          {"mean_entries_per_search", http["mean_entries"]},
          {"in_process_searches_per_s", in_process["searches_per_s"]},
          {"in_process_p99_ms", in_process["p99_ms"]},
          {"http_over_in_process_throughput",
           http["searches_per_s"].get<double>() /
               in_process["searches_per_s"].get<double>()}};
}

}  // namespace

CLINRL_REGISTER_BENCH(
    ehr,
    "FHIR patient+code Observation searches over HTTP keep-alive, "
    "8 concurrent clients, 1000 patients",
    RunEhrBench);

}  // namespace clinrl::bench
