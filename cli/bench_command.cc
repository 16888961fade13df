// `clinrl bench NAME [--threads N] [--quick] [--opt k=v]`: prints the
// hardware, runs the benchmark, and ends with one JSON line of figures.
#include <iostream>
#include <map>
#include <memory>

#include "bench/bench_registry.h"
#include "bench/hardware.h"
#include "cli/command_registry.h"
#include "core/error.h"

namespace clinrl::cli {
namespace {

void AddBenchCommands(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "run a benchmark (bench/)");
  bench->require_subcommand(1);
  const auto& registry = bench::BenchRegistry();
  for (const std::string& name : registry.Names()) {
    const bench::BenchCase& c = registry.Get(name);
    auto* sub = bench->add_subcommand(name, c.description);
    auto options = std::make_shared<bench::BenchOptions>();
    auto opts = std::make_shared<std::vector<std::string>>();
    sub->add_option("--threads", options->threads,
                    "intra-op threads (0 = all cores)");
    sub->add_option("--ranks", options->ranks, "processes, where it applies");
    sub->add_flag("--quick", options->quick, "small sizes (smoke test)");
    sub->add_option("--opt", *opts, "benchmark-specific key=value");
    auto flags = std::make_shared<std::map<std::string, std::string>>();
    for (const bench::BenchFlag& flag : c.flags) {
      sub->add_option("--" + flag.name, (*flags)[flag.name], flag.help);
    }
    sub->callback([name, c, options, opts, flags] {
      const int rc = RunCommand([&] {
        for (const auto& [key, value] : *flags) {
          if (!value.empty()) options->extra[key] = value;
        }
        for (const auto& kv : *opts) {
          const size_t eq = kv.find('=');
          if (eq == std::string::npos) {
            throw BadRequest("--opt '" + kv + "': expected key=value");
          }
          options->extra[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
        const nlohmann::json hw = bench::DescribeHardware();
        std::cout << "bench " << name << " on " << hw.dump() << std::endl;
        nlohmann::json figures = c.run(*options);
        figures["bench"] = name;
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
