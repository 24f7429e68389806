// Weight-only Winograd weight transform for AVX2: the shared lane loop
// (kernels/dispatch/winograd_a16_transform.h) over groups of 8 pairs, one ymm per row.
#include "kernels/dispatch/winograd_a16_internal.h"
#include "kernels/dispatch/winograd_a16_transform.h"

NIBBLE_WINOGRAD_A16_DEFINE(avx2, 8)
