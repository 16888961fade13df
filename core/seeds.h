// Seed derivation. clinrl derives every random stream from the run seed and
// where it is used (stage, step, round) instead of advancing one generator,
// so a resumed run draws exactly what the uninterrupted run would have.
#pragma once

#include <cstdint>
#include <string_view>

namespace clinrl {

// splitmix64's output function: a bijective 64-bit mixer.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed for (run seed, purpose, index).
inline uint64_t DeriveSeed(uint64_t run_seed, std::string_view purpose,
                           uint64_t index) {
  uint64_t h = SplitMix64(run_seed);
  for (char c : purpose) h = SplitMix64(h ^ static_cast<unsigned char>(c));
  return SplitMix64(h ^ index);
}

}  // namespace clinrl
