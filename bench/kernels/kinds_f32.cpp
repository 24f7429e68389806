// nibble's FP32 kernels: the packed GEMM and the convolution driver, at active_isa().
#include <memory>

#include "bench/kernels/bench_kinds.h"
#include "kernels/conv_f32.h"

namespace nibble::bench {

using namespace nibble::kernels;

BenchRun prepare_gemm_f32(const GemmShape& s, const BenchContext& ctx) {
  const GemmF32Kernel& kernel = gemm_f32_kernel(active_isa());
  struct Operands {
    std::vector<float> packed_a, b, c;
  };
  auto data = std::make_shared<Operands>();
  const std::vector<float> a = random_floats(size_t(s.m * s.k), 1);
  data->packed_a.resize(size_t(gemm_f32_packed_a_size(kernel, s.m, s.k)));
  gemm_f32_pack_a(kernel, s.m, s.k, a.data(), s.k, data->packed_a.data());  // once, at load
  data->b = random_floats(size_t(s.k * s.n), 2);
  data->c.resize(size_t(s.m * s.n));
  return [data, s, &kernel, pool = ctx.pool] {
    gemm_f32(kernel, s.m, s.n, s.k, data->packed_a.data(), data->b.data(), s.n, data->c.data(),
             s.n, Epilogue{}, pool);
  };
}

namespace {

BenchRun prepare_conv(const ConvShape& s, const BenchContext& ctx, ConvF32Algorithm algorithm) {
  ConvF32Shape shape;
  shape.in_channels = s.in_channels;
  shape.out_channels = s.out_channels;
  shape.groups = s.groups;
  ref::ConvGeometry& g = shape.geometry;
  g = conv_geometry(s, s.in_channels / s.groups);
  struct Operands {
    ConvF32Weights weights;
    std::vector<float> bias, x, y;
  };
  auto data = std::make_shared<Operands>();
  const std::vector<float> w = random_floats(size_t(s.out_channels * g.im2col_rows()), 1);
  data->weights = conv_f32_pack(shape, w.data(), active_isa(), algorithm);  // once, at load
  data->bias = random_floats(size_t(s.out_channels), 2);
  data->x = random_floats(size_t(s.in_channels * s.height * s.width), 3);
  data->y.resize(size_t(s.out_channels * g.out_size()));
  return [data, shape, pool = ctx.pool] {
    ConvF32Epilogue epilogue;
    epilogue.bias = data->bias.data();
    epilogue.activation = Activation::SiLU;
    conv_f32_run(shape, data->weights, data->x.data(), data->y.data(), epilogue, pool);
  };
}

}  // namespace

BenchRun prepare_conv_f32(const ConvShape& s, const BenchContext& ctx) {
  return prepare_conv(s, ctx, ConvF32Algorithm::Auto);
}

BenchRun prepare_conv_f32_direct(const ConvShape& s, const BenchContext& ctx) {
  return prepare_conv(s, ctx, ConvF32Algorithm::Direct);
}

}  // namespace nibble::bench
