// `clinrl bench NAME [--threads N] [--quick] [--opt k=v]`: prints the
// hardware, runs the benchmark, and ends with one JSON line of figures.
#include <algorithm>
#include <iostream>

#include "bench/bench_registry.h"
#include "bench/hardware.h"
#include "cli/command_registry.h"
#include "core/error.h"

namespace clinrl::cli {
namespace {

void AddBenchCommands(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "run a benchmark (bench/)");
  bench->require_subcommand(1);
  auto cases = bench::BenchRegistry();
  std::sort(cases.begin(), cases.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& c : cases) {
    auto* sub = bench->add_subcommand(c.name, c.description);
    auto options = std::make_shared<bench::BenchOptions>();
    auto opts = std::make_shared<std::vector<std::string>>();
    sub->add_option("--threads", options->threads,
                    "intra-op threads (0 = all cores)");
    sub->add_option("--ranks", options->ranks, "processes, where it applies");
    sub->add_flag("--quick", options->quick, "small sizes (smoke test)");
    sub->add_option("--opt", *opts, "benchmark-specific key=value");
    sub->callback([c, options, opts] {
      const int rc = RunCommand([&] {
        for (const auto& kv : *opts) {
          const size_t eq = kv.find('=');
          if (eq == std::string::npos) {
            throw BadRequest("--opt '" + kv + "': expected key=value");
          }
          options->extra[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
        const nlohmann::json hw = bench::DescribeHardware();
        std::cout << "bench " << c.name << " on " << hw.dump() << std::endl;
        nlohmann::json figures = c.run(*options);
        figures["bench"] = c.name;
        figures["hardware"] = hw;
        std::cout << figures.dump() << std::endl;
      });
      if (rc != 0) std::exit(rc);
    });
  }
}

}  // namespace

CLINRL_REGISTER_COMMAND(bench, AddBenchCommands);

}  // namespace clinrl::cli
