// How a data-parallel learner splits its state across ranks
// (trainer.sharding; docs/distributed.md): ZeRO-1 shards AdamW's moments
// (sharded_adamw.h), ZeRO-3 also the parameters and gradients (zero3.h).
#pragma once

#include <string>

namespace clinrl::trainer {

enum class Sharding { kZero1, kZero3 };

// "zero1" or "zero3"; throws BadRequest naming `field` otherwise.
Sharding ParseSharding(const std::string& name, const std::string& field);
const char* ShardingName(Sharding sharding);

}  // namespace clinrl::trainer
