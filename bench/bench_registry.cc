#include "bench/bench_registry.h"

#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

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

std::string LastLineOf(const std::string& command) {
  std::FILE* pipe = ::popen(command.c_str(), "r");
  CLINRL_CHECK_ERRNO(pipe != nullptr, "popen", "running {}", command);
  std::string output;
  std::array<char, 4096> chunk{};
  while (std::fgets(chunk.data(), static_cast<int>(chunk.size()), pipe)) {
    output += chunk.data();
  }
  const int status = ::pclose(pipe);
  if (status != 0) {
    throw InternalError(fmt::format("`{}` failed (status {}); its output:\n{}",
                                    command, status, output));
  }
  std::istringstream lines(output);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

std::string SelfExecutable() {
  std::array<char, 4096> path{};
  const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  CLINRL_CHECK_ERRNO(n > 0, "readlink", "finding the clinrl executable");
  return std::string(path.data(), static_cast<size_t>(n));
}

std::string MakeBenchTempDir(const std::string& name, const std::string& what) {
  std::string dir =
      (std::filesystem::temp_directory_path() / ("clinrl-" + name + "-XXXXXX"))
          .string();
  CLINRL_CHECK_ERRNO(::mkdtemp(dir.data()) != nullptr, "mkdtemp", what);
  return dir;
}

std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q * static_cast<double>(values.size()));
  const size_t index = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return values[std::min(index, values.size() - 1)];
}

}  // namespace clinrl::bench
