#include "kernels/cpu_features.h"

#include <cpuid.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "nibble/error.h"

namespace nibble::kernels {

namespace {

uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  bool osxsave = c & bit_OSXSAVE;
  bool avx = c & bit_AVX;
  f.fma = c & bit_FMA;
  f.f16c = c & bit_F16C;
  if (!osxsave || !avx) return CpuFeatures{};
  uint64_t xcr0 = read_xcr0();
  bool ymm_saved = (xcr0 & 0x6) == 0x6;          // SSE + AVX state
  bool zmm_saved = (xcr0 & 0xe6) == 0xe6;        // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!ymm_saved) return CpuFeatures{};
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = b & bit_AVX2;
  if (zmm_saved) {
    f.avx512f = b & bit_AVX512F;
    f.avx512dq = b & bit_AVX512DQ;
    f.avx512bw = b & bit_AVX512BW;
    f.avx512vl = b & bit_AVX512VL;
    f.avx512vnni = c & bit_AVX512VNNI;
  }
  __cpuid_count(7, 1, a, b, c, d);
  f.avx_vnni = a & (1u << 4);
  return f;
}

Isa parse_isa_env() {
  const char* env = std::getenv("NIBBLE_ISA");
  Isa cap = Isa::Avx512Vnni;
  if (env && *env) {
    std::string v = env;
    if (v == "ref") cap = Isa::Ref;
    else if (v == "avx2") cap = Isa::Avx2;
    else if (v == "avx512") cap = Isa::Avx512;
    else if (v == "avx512vnni") cap = Isa::Avx512Vnni;
    else {
      throw Error(ErrorKind::InvalidArgument,
                  "NIBBLE_ISA='" + v + "' is not one of ref, avx2, avx512, avx512vnni");
    }
  }
  return cap;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

Isa detected_isa() {
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c)) return Isa::Ref;
  if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq)) return Isa::Avx2;
  return f.avx512vnni ? Isa::Avx512Vnni : Isa::Avx512;
}

Isa active_isa() {
  static const Isa isa = [] {
    Isa cap = parse_isa_env();
    Isa have = detected_isa();
    return static_cast<int>(cap) < static_cast<int>(have) ? cap : have;
  }();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Vnni: return "avx512vnni";
  }
  return "?";
}

}  // namespace nibble::kernels
