// AVX512-VNNI is enabled per function, not per source file. The AVX-512 sources are compiled
// for AVX-512 F/BW/VL/DQ only (CMakeLists.txt) because the dispatcher runs their plain kernels on
// CPUs without VNNI (Skylake-SP/X): with a file-wide -mavx512vnni the compiler may put vpdpbusd or
// vpdpwssd in any function of the file, auto-vectorized loops and header inline functions (of
// which the linker keeps one copy for the whole library) included.
//
// Functions that call VNNI intrinsics carry NIBBLE_TARGET_VNNI, and so does every function they
// are always-inlined into (lambdas included: they do not inherit their enclosing function's
// target). Their names, or their template arguments, say "vnni": tests/tools/check_isa_code.py
// fails the build's tests when a function named otherwise contains a VNNI instruction. The one
// file compiled for VNNI as a whole, gemm_w8a8_w4a8_8x48_avx512vnni.cpp, is explained in
// CMakeLists.txt.
#pragma once

#define NIBBLE_TARGET_VNNI __attribute__((target("avx512vnni")))
