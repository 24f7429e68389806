// nibble's low-bit kernels (kernels/gemm_int.h), at active_isa():
//   w8a8, w4a8        uint8 activations (zero point 128) x int8/int4 weights, per-channel scales
//   w8a16, w4a16      float activations, weights expanded to float in the kernel
//   w8a16i16, w4a16i16  float activations quantized per tensor to int16 at run time
// GEMMs dequantize to float (no bias or activation, like the f32 kind). Convolutions fuse bias and
// SiLU like every conv kind; the integer kinds requantize to uint8 (the next quantized layer's
// input), the others write float. Depthwise shapes run the depthwise kernel (dwconv_int.h) as the
// engine does (engine/ops/qconv_driver.cpp): on uint8 activations in w8a8/w4a8, on float ones in
// the weight-only kinds (the int16 ones included). The weight-only kinds run 3x3 stride-1 shapes
// where the engine does: on the integer Winograd (winograd_i16.h) in the int16 kinds where the
// engine picks it, else on the weight-only Winograd (winograd_a16.h).
#include <algorithm>
#include <memory>
#include <random>

#include "bench/kernels/bench_kinds.h"
#include "kernels/dwconv_int.h"
#include "kernels/gemm_int.h"
#include "kernels/winograd_a16.h"
#include "kernels/winograd_i16.h"

namespace nibble::bench {

using namespace nibble::kernels;

namespace {

std::vector<int8_t> random_weights(size_t n, int bits, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(bits == 4 ? -8 : -128, bits == 4 ? 7 : 127);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = static_cast<int8_t>(dist(rng));
  return v;
}

std::vector<uint8_t> random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(0, 255);
  std::vector<uint8_t> v(n);
  for (uint8_t& x : v) x = static_cast<uint8_t>(dist(rng));
  return v;
}

struct Operands {
  PackedQWeights weights;
  ref::ConvGeometry geometry;
  std::vector<uint8_t> x8, y8;
  std::vector<float> xf, yf, bias;
};

// A convolution's random input image and its output of `rows` x `n`, as the engine passes them:
// uint8 in and out (zero points 128 and 10) in mode A8, float in and out otherwise.
void conv_operands(Operands& d, QuantMode mode, const ConvShape& s, int64_t rows, int64_t n,
                   QSource& source, QOutput& out) {
  const size_t in_values = size_t(s.in_channels * s.height * s.width);
  source.conv = &d.geometry;
  if (mode == QuantMode::A8) {
    d.x8 = random_bytes(in_values, 3);
    d.y8.resize(size_t(rows * n));
    source.type = QType::U8;
    source.data = d.x8.data();
    source.scale = 0.02f;
    source.zero_point = 128;
    out = QOutput{QType::U8, d.y8.data(), n, 1, 0.05f, 10};
  } else {
    d.xf = random_floats(in_values, 3);
    d.yf.resize(size_t(rows * n));
    source.type = QType::F32;
    source.data = d.xf.data();
    out = QOutput{QType::F32, d.yf.data(), n, 1, 1.0f, 0};
  }
}

// Runs all columns, split across the pool's threads in multiples of `grain` columns (whole
// output rows for convolutions).
void run_columns(const Operands& d, const QSource& source, int64_t n, int64_t grain,
                 const QEpilogue& ep, const QOutput& out, ThreadPool* pool) {
  if (pool == nullptr || pool->num_threads() <= 1) {
    qgemm(d.weights, source, n, 0, n, ep, out);
    return;
  }
  const int64_t chunks = (n + grain - 1) / grain;
  pool->parallel_for(chunks, [&](int64_t begin, int64_t end) {
    qgemm(d.weights, source, n, begin * grain, std::min(n, end * grain), ep, out);
  });
}

BenchRun prepare_gemm(QuantMode mode, int bits, const GemmShape& s, const BenchContext& ctx) {
  auto d = std::make_shared<Operands>();
  const std::vector<int8_t> w = random_weights(size_t(s.m * s.k), bits, 1);
  const std::vector<float> scales(size_t(s.m), 0.01f);
  d->weights = pack_qweights(mode, bits, s.m, s.k, w.data(), s.k, scales.data(), true);
  QSource source;
  source.row_stride = s.n;
  if (mode == QuantMode::A8) {
    d->x8 = random_bytes(size_t(s.k * s.n), 2);
    source.type = QType::U8;
    source.data = d->x8.data();
    source.zero_point = 128;
  } else {
    d->xf = random_floats(size_t(s.k * s.n), 2);
    source.type = QType::F32;
    source.data = d->xf.data();
  }
  d->yf.resize(size_t(s.m * s.n));
  return [d, source, s, mode, pool = ctx.pool] {
    QSource b = source;
    // The per-tensor statistic is part of the int16 mode's cost.
    if (mode == QuantMode::A16I16) b.abs_max = qgemm_abs_max(d->xf.data(), s.k * s.n);
    const QOutput out{QType::F32, d->yf.data(), s.n, 1, 1.0f, 0};
    run_columns(*d, b, s.n, 64, QEpilogue{}, out, pool);
  };
}

// One channel per group: the depthwise kernel (kernels/dwconv_int.h) as nibble.QConv runs it
// (run_qdwconv in engine/ops/qconv_driver.cpp): uint8 activations in mode A8; float ones for
// the weight-only modes, A16I16 included (the engine runs those layers in A16), in blocks of
// about 16K outputs per call, spread across the pool's threads.
BenchRun prepare_depthwise(QuantMode mode, int bits, const ConvShape& s, const BenchContext& ctx) {
  if (mode == QuantMode::A16I16) mode = QuantMode::A16;
  auto d = std::make_shared<Operands>();
  ref::ConvGeometry& g = d->geometry;
  g = conv_geometry(s, 1);
  const int64_t channels = s.out_channels, taps = s.kernel * s.kernel, n = g.out_size();
  const std::vector<int8_t> w = random_weights(size_t(channels * taps), bits, 1);
  const std::vector<float> scales(size_t(channels), 0.01f);
  auto packed = std::make_shared<PackedQDwWeights>(
      pack_qdwconv_weights(mode, bits, channels, taps, w.data(), scales.data(), true));  // at load
  d->bias = random_floats(size_t(channels), 2);
  QSource source;
  QOutput out;
  conv_operands(*d, mode, s, channels, n, source, out);
  // Work items: channels in mode A8 (each thread's in one call), blocks of channels otherwise.
  const bool by_channel = mode == QuantMode::A8;
  const int64_t per_block = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(n, 1));
  const int64_t blocks = by_channel ? channels : (channels + per_block - 1) / per_block;
  return [d, packed, source, out, channels, by_channel, per_block, blocks, pool = ctx.pool] {
    QEpilogue ep;
    ep.bias = d->bias.data();
    ep.silu = true;
    auto run_blocks = [&](int64_t begin, int64_t end) {
      if (by_channel) {
        qdwconv(*packed, source, begin, end, ep, out);
        return;
      }
      for (int64_t b = begin; b < end; ++b) {
        qdwconv(*packed, source, b * per_block, std::min(channels, (b + 1) * per_block), ep, out);
      }
    };
    if (pool == nullptr || pool->num_threads() <= 1) {
      run_blocks(0, blocks);
      return;
    }
    pool->parallel_for(blocks, run_blocks);
  };
}

// Int16-activation 3x3 stride-1 layers where the engine picks the integer Winograd
// (winograd_i16_preferred, the engine's rule): per run, max |x| and the convolution.
BenchRun prepare_winograd_i16(int bits, const ConvF32Shape& shape, const BenchContext& ctx) {
  struct WinogradOperands {
    WinogradI16Weights weights;
    std::vector<float> bias, x, y;
  };
  auto d = std::make_shared<WinogradOperands>();
  const ref::ConvGeometry& g = shape.geometry;
  const int64_t m = shape.out_channels, n = g.out_size();
  const std::vector<int8_t> w = random_weights(size_t(m * g.im2col_rows()), bits, 1);
  const std::vector<float> scales(size_t(m), 0.01f);
  d->weights = winograd_i16_pack(shape, bits, w.data(), scales.data());  // at load
  d->bias = random_floats(size_t(m), 2);
  d->x = random_floats(size_t(shape.in_channels * g.in_size()), 3);
  d->y.resize(size_t(m * n));
  return [d, shape, n, pool = ctx.pool] {
    QEpilogue ep;
    ep.bias = d->bias.data();
    ep.silu = true;
    const float abs_max = qgemm_abs_max(d->x.data(), int64_t(d->x.size()));
    winograd_i16_conv(shape, d->weights, d->x.data(), abs_max, ep,
                      QOutput{QType::F32, d->y.data(), n, 1, 1.0f, 0}, pool);
  };
}

// Weight-only 3x3 stride-1 layers where the engine picks Winograd (engine/ops/qconv_driver.cpp:
// always with float activations, with int16 activations where it beats the int16 kernels):
// the FP32 Winograd driver over weights kept at 4/8 bits.
BenchRun prepare_winograd_a16(QuantMode mode, int bits, const ConvShape& s, const BenchContext& ctx) {
  if (mode == QuantMode::A8 || s.groups != 1) return {};
  ConvF32Shape shape;
  shape.in_channels = s.in_channels;
  shape.out_channels = s.out_channels;
  ref::ConvGeometry& g = shape.geometry;
  g = conv_geometry(s, s.in_channels);
  if (mode == QuantMode::A16I16 && winograd_i16_preferred(shape, active_isa())) {
    return prepare_winograd_i16(bits, shape, ctx);
  }
  const WinogradF32Kernel* kernel = winograd_a16_choose(shape, active_isa());
  if (kernel == nullptr || (mode == QuantMode::A16I16 && !winograd_a16_beats_int16(shape))) return {};
  struct WinogradOperands {
    WinogradA16Weights weights;
    std::vector<float> bias, x, y;
  };
  auto d = std::make_shared<WinogradOperands>();
  const int64_t m = s.out_channels, n = g.out_size();
  const std::vector<int8_t> w = random_weights(size_t(m * g.im2col_rows()), bits, 1);
  const std::vector<float> scales(size_t(m), 0.01f);
  d->weights = winograd_a16_pack(shape, bits, w.data(), scales.data(), *kernel);  // at load
  d->bias = random_floats(size_t(m), 2);
  d->x = random_floats(size_t(s.in_channels * s.height * s.width), 3);
  d->y.resize(size_t(m * n));
  return [d, shape, n, pool = ctx.pool] {
    QEpilogue ep;
    ep.bias = d->bias.data();
    ep.silu = true;
    winograd_a16_conv(shape, d->weights, d->x.data(), ep, QOutput{QType::F32, d->y.data(), n, 1, 1.0f, 0}, pool);
  };
}

BenchRun prepare_conv(QuantMode mode, int bits, const ConvShape& s, const BenchContext& ctx) {
  if (s.groups != 1) {
    const bool depthwise = s.groups == s.in_channels && s.groups == s.out_channels;
    return depthwise ? prepare_depthwise(mode, bits, s, ctx) : BenchRun{};
  }
  if (BenchRun winograd = prepare_winograd_a16(mode, bits, s, ctx)) return winograd;
  auto d = std::make_shared<Operands>();
  ref::ConvGeometry& g = d->geometry;
  g = conv_geometry(s, s.in_channels);
  const int64_t m = s.out_channels, k = g.im2col_rows(), n = g.out_size();
  const std::vector<int8_t> w = random_weights(size_t(m * k), bits, 1);
  const std::vector<float> scales(size_t(m), 0.01f);
  d->weights = pack_qconv_weights(mode, bits, m, s.in_channels, s.kernel * s.kernel, w.data(),
                                  scales.data(), true);  // at load
  d->bias = random_floats(size_t(m), 2);
  QSource source;
  QOutput out;
  conv_operands(*d, mode, s, m, n, source, out);
  return [d, source, out, mode, n, pool = ctx.pool] {
    QSource b = source;
    if (mode == QuantMode::A16I16) b.abs_max = qgemm_abs_max(d->xf.data(), int64_t(d->xf.size()));
    QEpilogue ep;
    ep.bias = d->bias.data();
    ep.silu = true;
    run_columns(*d, b, n, d->geometry.out[2], ep, out, pool);
  };
}

}  // namespace

BenchRun prepare_gemm_w8a8(const GemmShape& s, const BenchContext& c) {
  return prepare_gemm(QuantMode::A8, 8, s, c);
}
BenchRun prepare_gemm_w4a8(const GemmShape& s, const BenchContext& c) {
  return prepare_gemm(QuantMode::A8, 4, s, c);
}
BenchRun prepare_gemm_w8a16(const GemmShape& s, const BenchContext& c) {
  return prepare_gemm(QuantMode::A16, 8, s, c);
}
BenchRun prepare_gemm_w4a16(const GemmShape& s, const BenchContext& c) {
  return prepare_gemm(QuantMode::A16, 4, s, c);
}
BenchRun prepare_gemm_w8a16i16(const GemmShape& s, const BenchContext& c) {
  return prepare_gemm(QuantMode::A16I16, 8, s, c);
}
BenchRun prepare_gemm_w4a16i16(const GemmShape& s, const BenchContext& c) {
  return prepare_gemm(QuantMode::A16I16, 4, s, c);
}
BenchRun prepare_conv_w8a8(const ConvShape& s, const BenchContext& c) {
  return prepare_conv(QuantMode::A8, 8, s, c);
}
BenchRun prepare_conv_w4a8(const ConvShape& s, const BenchContext& c) {
  return prepare_conv(QuantMode::A8, 4, s, c);
}
BenchRun prepare_conv_w8a16(const ConvShape& s, const BenchContext& c) {
  return prepare_conv(QuantMode::A16, 8, s, c);
}
BenchRun prepare_conv_w4a16(const ConvShape& s, const BenchContext& c) {
  return prepare_conv(QuantMode::A16, 4, s, c);
}
BenchRun prepare_conv_w8a16i16(const ConvShape& s, const BenchContext& c) {
  return prepare_conv(QuantMode::A16I16, 8, s, c);
}
BenchRun prepare_conv_w4a16i16(const ConvShape& s, const BenchContext& c) {
  return prepare_conv(QuantMode::A16I16, 4, s, c);
}

}  // namespace nibble::bench
