// Benchmarks run through `clinrl bench NAME`. Each registers a function that
// prints its progress as it goes and returns its figures; the runner prints
// the hardware first and the figures last, as one JSON line.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/registry.h"

namespace clinrl::bench {

struct BenchOptions {
  int64_t threads = 0;  // 0 = all cores
  int64_t ranks = 1;    // for benches that start several processes
  bool quick = false;   // smaller sizes, for smoke tests in ctest
  // --opt key=value, and the bench's own flags (--precision bf16 is
  // extra["precision"] = "bf16").
  std::map<std::string, std::string> extra;
};

// The integer value of `--opt key=N`, or `fallback` when absent; throws
// BadRequest naming the option when it is not an integer.
int64_t IntOption(const BenchOptions& options, const std::string& key,
                  int64_t fallback);

// The value of the bench flag or `--opt key=...`, or `fallback`; throws
// BadRequest naming the flag when it is not one of `allowed` (empty: any).
std::string StringOption(const BenchOptions& options, const std::string& key,
                         const std::string& fallback,
                         std::initializer_list<const char*> allowed = {});

// Runs `command` through the shell and returns the last non-empty line of
// its output (a peer's or a child bench's JSON line); throws InternalError
// with the whole output when the command fails.
std::string LastLineOf(const std::string& command);

// This executable's path (/proc/self/exe), for benches that start children.
std::string SelfExecutable();

// A fresh folder "clinrl-<name>-XXXXXX" under the temporary directory
// ($TMPDIR, else /tmp); `what` says in an error what it was for. The bench
// removes it.
std::string MakeBenchTempDir(const std::string& name, const std::string& what);

// `text` quoted for a POSIX shell command line.
std::string ShellQuote(const std::string& text);

// The q-quantile (0..1) of `values` by nearest rank; 0 when empty.
double Percentile(std::vector<double> values, double q);

using BenchFn = std::function<nlohmann::json(const BenchOptions&)>;

// A `--name VALUE` flag of one bench.
struct BenchFlag {
  std::string name;
  std::string help;
};

struct BenchCase {
  std::string description;
  BenchFn run;
  std::vector<BenchFlag> flags;
};

// Benchmarks by name.
Registry<BenchCase>& BenchRegistry();

}  // namespace clinrl::bench

#define CLINRL_REGISTER_BENCH(id, description, fn, ...)                     \
  static ::clinrl::StaticRegistration clinrl_bench_##id([] {                \
    ::clinrl::bench::BenchRegistry().Add(#id,                               \
                                         {description, fn, {__VA_ARGS__}}); \
  })
