// Helpers for the FP32 kernel tests: the ISAs this CPU can run (each tested directly, whatever
// NIBBLE_ISA says), random data and a tolerance for float sums scaled by their length.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"

namespace f32_testing {

using nibble::kernels::Isa;

// Ref always; AVX2 and AVX-512 when the CPU has them (a missing one is reported, once).
inline std::vector<Isa> testable_isas() {
  std::vector<Isa> isas = {Isa::Ref};
  const Isa have = nibble::kernels::detected_isa();
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(have) >= static_cast<int>(isa)) {
      isas.push_back(isa);
    } else {
      static bool reported[3] = {};
      if (!reported[static_cast<int>(isa)]) {
        MESSAGE("this CPU lacks " << std::string(nibble::kernels::isa_name(isa)) << ": its kernels are not tested");
        reported[static_cast<int>(isa)] = true;
      }
    }
  }
  return isas;
}

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A float sum of `terms` products whose magnitudes add up to `magnitude` may differ from the
// exact sum by about terms * eps * magnitude; the epilogue adds a few ulp of the result (its exp).
inline float tolerance(int64_t terms, double magnitude, float expected) {
  const double eps = std::numeric_limits<float>::epsilon();
  return static_cast<float>(2.0 * eps * double(terms + 2) * magnitude +
                            8.0 * eps * std::fabs(expected) + 1e-30);
}

}  // namespace f32_testing
