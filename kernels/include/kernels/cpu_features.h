// CPU feature detection and the ISA level kernels are chosen for.
#pragma once

namespace nibble::kernels {

// Ordered: each level implies the ones before it.
enum class Isa {
  Ref = 0,     // portable scalar C++ (the test oracle)
  Avx2 = 1,    // AVX2 + FMA + F16C
  Avx512 = 2,  // AVX-512 F/BW/VL/DQ
  Avx512Vnni = 3,  // + AVX512_VNNI (vpdpbusd)
};

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx_vnni = false;  // VEX-encoded VNNI (Alder Lake, Zen 5)
};

// Read once from cpuid + xgetbv (the OS must save the wide registers too).
const CpuFeatures& cpu_features();
// Highest level this CPU supports.
Isa detected_isa();
// The level kernels use: detected_isa() capped by the environment variable
// NIBBLE_ISA=ref|avx2|avx512|avx512vnni (read once; an unknown value is an error).
Isa active_isa();
const char* isa_name(Isa isa);

}  // namespace nibble::kernels
