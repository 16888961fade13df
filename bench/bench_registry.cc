#include "bench/bench_registry.h"

namespace clinrl::bench {

std::vector<BenchCase>& BenchRegistry() {
  static std::vector<BenchCase> registry;
  return registry;
}

}  // namespace clinrl::bench
