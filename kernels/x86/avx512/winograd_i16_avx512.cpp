// Integer Winograd transforms for AVX-512 (kernels/dispatch/winograd_i16_transform.h): 16
// units (one zmm) per vector; the epilogue is the A16I16 tiles' (store_int_rows).
#include "kernels/dispatch/winograd_i16_transform.h"
#include "kernels/x86/avx512/gemm_int_common_avx512.h"

NIBBLE_WINOGRAD_I16_DEFINE(avx512, 16, qgemm_detail::avx512::store_int_rows)
