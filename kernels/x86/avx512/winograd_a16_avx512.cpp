// Weight-only Winograd weight transform for AVX-512: the shared lane loop
// (kernels/dispatch/winograd_a16_transform.h) over groups of 16 pairs, one zmm per row.
#include "kernels/dispatch/winograd_a16_internal.h"
#include "kernels/dispatch/winograd_a16_transform.h"

NIBBLE_WINOGRAD_A16_DEFINE(avx512, 16)
