// The float32 arithmetic of ONNX Runtime's CPU Softmax and LogSoftmax (MLAS), reproduced bit for
// bit so that models which quantize a Softmax output (YOLO11's attention) match ONNX Runtime.
//
// Per row MLAS takes the maximum, then one kernel computes exp(x - max) and sums it, then
// Softmax multiplies by 1 / sum and LogSoftmax is (x - max) - log(sum). The sum kernel depends
// on the CPU ONNX Runtime runs on (mlas/lib/platform.cpp), and so must nibble's:
//   AVX2 + FMA3 (e.g. AMD Zen 3): MlasComputeSumExpF32KernelFma3 sums in 8 lanes (value i into
//     lane i % 8), folded ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); its exp clamps x at
//     -88.376 and builds 2^m in the exponent field, which is 0 for m = -127 (x below ~ -87.7).
//   AVX-512F: MlasComputeSumExpF32KernelAvx512F sums in 16 lanes, lane l and l + 8 added first,
//     then folded as above; its exp clamps x at -103.97 and scales by 2^m with vscalefps (one
//     rounding, into the subnormals).
// Both reduce x = m ln2 + r and evaluate the same degree-6 polynomial with fused multiply-adds.
// (Without AVX2 ONNX Runtime takes a 4-lane SSE2 kernel that nibble does not reproduce; such
// CPUs get the FMA3 arithmetic.)
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kernels/cpu_features.h"
#include "nibble/error.h"

namespace nibble::mlas {

enum class SumExpKernel { Fma3, Avx512F };

inline const char* sum_exp_kernel_name(SumExpKernel k) {
  return k == SumExpKernel::Avx512F ? "avx512f" : "fma3";
}

// The kernel ONNX Runtime picks on this CPU. It follows the detected CPU, not NIBBLE_ISA: ONNX
// Runtime ignores that cap, and outputs must not change with it (test_determinism_yolo). The
// environment variable NIBBLE_MLAS_SOFTMAX=fma3|avx512f (read once) overrides the choice, to
// reproduce here what ONNX Runtime computes on another CPU.
inline SumExpKernel sum_exp_kernel() {
  static const SumExpKernel kernel = [] {
    const char* env = std::getenv("NIBBLE_MLAS_SOFTMAX");
    if (env && *env) {
      const std::string v = env;
      if (v == "fma3") return SumExpKernel::Fma3;
      if (v == "avx512f") return SumExpKernel::Avx512F;
      throw Error(ErrorKind::InvalidArgument,
                  "NIBBLE_MLAS_SOFTMAX='" + v + "' is not one of fma3, avx512f");
    }
    return kernels::cpu_features().avx512f ? SumExpKernel::Avx512F : SumExpKernel::Fma3;
  }();
  return kernel;
}

template <SumExpKernel K>
inline constexpr int kSumLanes = K == SumExpKernel::Avx512F ? 16 : 8;

// exp(x) for x <= 0 (a value minus its row's maximum) as kernel K computes it: x = m ln2 + r
// with m = round(x / ln2), exp(r) by MLAS's polynomial (within 0.85 ulp), times 2^m. NaN stays
// NaN (MLAS's vmaxps returns its second operand, x, when one is NaN).
template <SumExpKernel K>
inline float exp_nonpositive(float x) {
  constexpr float kLowest = K == SumExpKernel::Avx512F ? -103.9720840454f : -88.3762626647949f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: t + kRound holds round(t) in its low bits
  x = x < kLowest ? kLowest : x;
  const float biased = std::fma(x, 1.44269504088896341f, kRound);
  const float m = biased - kRound;
  float r = std::fma(m, -6.93145752e-1f, x);  // ln2 in two parts
  r = std::fma(m, -1.42860677e-6f, r);
  float p = 0x1.694000p-10f;
  p = std::fma(p, r, 0x1.125edcp-7f);
  p = std::fma(p, r, 0x1.555b5ap-5f);
  p = std::fma(p, r, 0x1.555450p-3f);
  p = std::fma(p, r, 0x1.fffff6p-2f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  // m sits in biased's low bits; shifted into the exponent field it gives 2^m directly.
  const int32_t e = int32_t(std::bit_cast<uint32_t>(biased) - std::bit_cast<uint32_t>(kRound));
  if constexpr (K == SumExpKernel::Fma3) {
    // m >= -127 after the clamp; m = -127 wraps to the bits of 0.0f, as in MLAS.
    return p * std::bit_cast<float>(uint32_t(e + 127) << 23);
  } else {
    // vscalefps: p * 2^m rounded once. The first power-of-two factor keeps the product normal,
    // so only the second (into the subnormals, for m < -126) rounds.
    const int32_t e1 = e >> 1, e2 = e - e1;
    return p * std::bit_cast<float>((e1 + 127) << 23) * std::bit_cast<float>((e2 + 127) << 23);
  }
}

// The lane sums of kernel K folded to one, as its final reduction does.
template <SumExpKernel K, class C>
inline C fold_lanes(const C* lane) {
  C s[8];
  for (int l = 0; l < 8; ++l) {
    s[l] = K == SumExpKernel::Avx512F ? lane[l] + lane[l + 8] : lane[l];
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Sum of n values as kernel K adds them: value i into lane i % kSumLanes<K>, then folded.
template <SumExpKernel K, class C>
inline C lane_sum(const C* v, int64_t n) {
  constexpr int64_t kLanes = kSumLanes<K>;
  C lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) lane[l] += v[i + l];
  }
  for (int64_t l = 0; i + l < n; ++l) lane[l] += v[i + l];
  return fold_lanes<K>(lane);
}

}  // namespace nibble::mlas
