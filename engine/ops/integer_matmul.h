// The int32 matrix product of MatMulInteger and QLinearMatMul (engine/ops/quant.cpp):
// C = (A - a_zero_point) · (B - b_zero_point), numpy-broadcast batches.
//
// When B is a constant matrix (2-D or 1-D) whose values minus their zero points fit int8, prepare
// packs it once for the A8 integer GEMM kernels (kernels/include/kernels/gemm_int.h), which give
// the exact int32 sums; A is then read in place as the kernels' activation side, with a per-tensor
// zero point. Everything else (B computed at run time, batched B, a zero point per row of A,
// weights that leave int8 after their zero point) runs on the reference integer GEMM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/ops/nn_common.h"

namespace nibble {

// Inputs of the operands and their zero points in the node (absent zero points are 0).
struct IntegerMatMulInputs {
  size_t a = 0, a_zero_point = 2, b = 1, b_zero_point = 3;
};

// Packs B when it can (see above); never null.
std::shared_ptr<const void> integer_matmul_prepare(const InferContext& ctx,
                                                   const IntegerMatMulInputs& in);
// What `nibble inspect` says: the integer GEMM kernel, or the reference loops.
KernelInfo integer_matmul_kernel_info(const InferContext&, const void* state);
// y = C in int32, layout.output_shape; state is integer_matmul_prepare's.
void integer_matmul_sum(const ComputeContext& ctx, const IntegerMatMulInputs& in,
                        const MatMulLayout& layout, int32_t* y);

}  // namespace nibble
