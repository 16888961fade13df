// What a benchmark ran on: every benchmark prints this before its figures.
#pragma once

#include <nlohmann/json.hpp>

namespace clinrl::bench {

// cpu model, logical cores, memory, kernel; read from /proc and uname.
nlohmann::json DescribeHardware();

}  // namespace clinrl::bench
