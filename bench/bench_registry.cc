#include "bench/bench_registry.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace clinrl::bench {

Registry<BenchCase>& BenchRegistry() {
  static Registry<BenchCase> registry(
      "benchmark", "benchmark '{name}' is not registered; registered: {known}");
  return registry;
}

int64_t IntOption(const BenchOptions& options, const std::string& key,
                  int64_t fallback) {
  auto it = options.extra.find(key);
  if (it == options.extra.end()) return fallback;
  try {
    size_t used = 0;
    const int64_t value = std::stoll(it->second, &used);
    if (used == it->second.size()) return value;
  } catch (const std::exception&) {
  }
  throw BadRequest(
      fmt::format("--opt {}={}: expected an integer", key, it->second));
}

std::string StringOption(const BenchOptions& options, const std::string& key,
                         const std::string& fallback,
                         std::initializer_list<const char*> allowed) {
  auto it = options.extra.find(key);
  if (it == options.extra.end()) return fallback;
  if (allowed.size() == 0) return it->second;
  for (const char* a : allowed) {
    if (it->second == a) return it->second;
  }
  throw BadRequest(fmt::format("--{} {}: expected one of: {}", key, it->second,
                               fmt::join(allowed, ", ")));
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q * static_cast<double>(values.size()));
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return values[std::min(index, values.size() - 1)];
}

}  // namespace clinrl::bench
