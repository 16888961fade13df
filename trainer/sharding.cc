#include "trainer/sharding.h"

#include <fmt/format.h>

#include "core/error.h"

namespace clinrl::trainer {

Sharding ParseSharding(const std::string& name, const std::string& field) {
  if (name == "zero1") return Sharding::kZero1;
  if (name == "zero3") return Sharding::kZero3;
  throw BadRequest(fmt::format(
      "{}: got '{}', expected zero1 (optimizer state sharded) or zero3 "
      "(parameters, gradients and optimizer state sharded)",
      field, name));
}

const char* ShardingName(Sharding sharding) {
  return sharding == Sharding::kZero3 ? "zero3" : "zero1";
}

}  // namespace clinrl::trainer
