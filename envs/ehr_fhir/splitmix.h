// splitmix64: a tiny seeded stream, identical on every platform (std::
// distributions are implementation-defined), for the synthetic record and
// the scripted policies, whose output must not depend on the machine; and
// StableHash, the same on every platform, for the task builders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clinrl::envs::ehr {

// splitmix64's output function: the state after its step, well mixed.
inline uint64_t SplitMix64Finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
inline constexpr uint64_t kSplitMix64Gamma = 0x9E3779B97F4A7C15ULL;

// FNV-1a of `s`, then one splitmix64 step: which patients are test patients
// (ehr_tasks.h) and the order the task families visit them.
inline uint64_t StableHash(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return SplitMix64Finalize(h + kSplitMix64Gamma);
}

class SplitMix64 {
 public:
  // `stream` separates users that draw from the same seeds.
  SplitMix64(uint64_t seed, uint64_t stream)
      : state_(seed * kSplitMix64Gamma + stream) {}
  uint64_t Next() { return SplitMix64Finalize(state_ += kSplitMix64Gamma); }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  int64_t Int(int64_t lo, int64_t hi) {  // inclusive
    return lo +
           static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(double p) { return Uniform() < p; }
  // Irwin-Hall: a normal deviate from plain arithmetic (no libm).
  double Normal() {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += Uniform();
    return s - 6.0;
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Next() % v.size())];
  }

 private:
  uint64_t state_;
};

}  // namespace clinrl::envs::ehr
