// Weight-only Winograd weight transform of the reference level: the shared lane loop
// (kernels/dispatch/winograd_a16_transform.h) over groups of 4 pairs, one SSE register (the
// baseline x86-64 has) per row, built without ISA flags.
#include "kernels/dispatch/winograd_a16_internal.h"
#include "kernels/dispatch/winograd_a16_transform.h"

NIBBLE_WINOGRAD_A16_DEFINE(ref, 4)
