#include "bench/hardware.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace clinrl::bench {

namespace {
std::string ProcField(const char* file, const char* key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      size_t start = line.find_first_not_of(" \t", colon + 1);
      return start == std::string::npos ? "" : line.substr(start);
    }
  }
  return "";
}
}  // namespace

nlohmann::json DescribeHardware() {
  nlohmann::json hw;
  hw["cpu"] = ProcField("/proc/cpuinfo", "model name");
  hw["logical_cores"] = std::thread::hardware_concurrency();
  const std::string mem = ProcField("/proc/meminfo", "MemTotal");
  hw["memory_gib"] = mem.empty() ? 0.0 : std::stod(mem) / (1024.0 * 1024.0);
  const std::string flags = ProcField("/proc/cpuinfo", "flags");
  hw["avx2"] = flags.find("avx2") != std::string::npos;
  hw["avx512f"] = flags.find("avx512f") != std::string::npos;
  struct utsname name {};
  if (uname(&name) == 0) {
    hw["kernel"] = std::string(name.sysname) + " " + name.release;
  }
  return hw;
}

}  // namespace clinrl::bench
