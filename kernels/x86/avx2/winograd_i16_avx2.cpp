// Integer Winograd transforms for AVX2 (kernels/dispatch/winograd_i16_transform.h): 8 units
// (one ymm) per vector; the epilogue is the A16I16 tiles' (store_int_rows).
#include "kernels/dispatch/winograd_i16_transform.h"
#include "kernels/x86/avx2/gemm_int_common_avx2.h"

NIBBLE_WINOGRAD_I16_DEFINE(avx2, 8, qgemm_detail::avx2::store_int_rows)
