// oneDNN int8 baselines (Debian's libdnnl, 2.x API) for the w8a8/w4a8 kinds, at the same thread
// count and ISA cap as nibble (bench_main.cpp):
//   onednn_u8s8 GEMM  dnnl::gemm_u8s8s32 (uint8 x int8 -> int32), computing the same product
//                     transposed (C^T = X^T · W^T, oneDNN's uint8 operand being A);
//   onednn_u8s8 conv  convolution_forward with uint8 source (zero point 128), int8 weights,
//                     float bias, per-channel output scales, a fused swish (SiLU) and uint8
//                     destination (zero point 10) — exactly what w8a8/w4a8 compute — every tensor
//                     in the layout oneDNN prefers (format `any`, reordered once outside the
//                     timed loop); depthwise shapes as grouped convolutions;
//   onednn_u8s8_nozp  the same without zero points (symmetric activations: oneDNN's fastest
//                     path, less work than the nibble kinds do).
#include <dnnl.hpp>
#include <memory>
#include <random>
#include <unordered_map>

#include "bench/kernels/bench_kinds.h"

namespace nibble::bench {
namespace {

struct Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Engine& onednn() {
  static Engine e;
  return e;
}

template <typename T>
std::vector<T> random_ints(size_t n, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(dist(rng));
  return v;
}

// A memory object of `desc` holding `values` given in the plain layout `user`.
template <typename T>
dnnl::memory filled(const dnnl::memory::desc& desc, const dnnl::memory::desc& user,
                    std::vector<T> values) {
  Engine& e = onednn();
  dnnl::memory plain(user, e.engine, values.data());
  dnnl::memory target(desc, e.engine);
  dnnl::reorder(plain, target).execute(e.stream, plain, target);
  e.stream.wait();
  return target;
}

}  // namespace

BenchRun prepare_gemm_onednn_u8s8(const GemmShape& s, const BenchContext&) {
  struct Operands {
    std::vector<int8_t> w;   // m x k
    std::vector<uint8_t> x;  // k x n
    std::vector<int32_t> c;  // n x m (C transposed)
  };
  auto d = std::make_shared<Operands>();
  d->w = random_ints<int8_t>(size_t(s.m * s.k), -128, 127, 1);
  d->x = random_ints<uint8_t>(size_t(s.k * s.n), 0, 255, 2);
  d->c.resize(size_t(s.m * s.n));
  return [d, s] {
    const int32_t no_offset = 0;
    dnnl::gemm_u8s8s32('T', 'T', 'F', s.n, s.m, s.k, 1.0f, d->x.data(), s.n, 0, d->w.data(), s.k, 0,
                       0.0f, d->c.data(), s.m, &no_offset);
  };
}

namespace {

// The convolution with uint8 source, int8 weights, float bias, per-channel output scales, a fused
// swish and uint8 destination. With `zero_points`, the source has zero point 128 and the
// destination 10, as in nibble's w8a8/w4a8 kinds (runtime zero points: the only kind oneDNN 2.x
// convolutions take).
BenchRun prepare_conv_u8s8(const ConvShape& s, bool zero_points) {
  using dnnl::memory;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  Engine& e = onednn();
  const memory::dims src_dims{1, s.in_channels, s.height, s.width};
  const memory::dims dst_dims{1, s.out_channels, s.out_height(), s.out_width()};
  const bool grouped = s.groups > 1;
  const memory::dims w_dims =
      grouped ? memory::dims{s.groups, s.out_channels / s.groups, s.in_channels / s.groups,
                             s.kernel, s.kernel}
              : memory::dims{s.out_channels, s.in_channels, s.kernel, s.kernel};
  const memory::desc src_md(src_dims, dt::u8, tag::any), dst_md(dst_dims, dt::u8, tag::any);
  const memory::desc w_md(w_dims, dt::s8, tag::any), bias_md({s.out_channels}, dt::f32, tag::x);
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, w_md,
      bias_md, dst_md, {s.stride, s.stride}, {s.pad(), s.pad()}, {s.pad(), s.pad()});
  dnnl::primitive_attr attr;
  attr.set_output_scales(1 << 1, std::vector<float>(size_t(s.out_channels), 0.01f));
  dnnl::post_ops ops;
  ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
  attr.set_post_ops(ops);
  if (zero_points) {
    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
  }
  const dnnl::convolution_forward::primitive_desc pd(desc, attr, e.engine);

  struct State {
    dnnl::convolution_forward conv;
    dnnl::memory src, weights, bias, dst, src_zero_point, dst_zero_point;
    std::vector<int32_t> zero_point_values{128, 10};
  };
  auto state = std::make_shared<State>();
  state->conv = dnnl::convolution_forward(pd);
  state->src = filled(pd.src_desc(), memory::desc(src_dims, dt::u8, tag::nchw),
                      random_ints<uint8_t>(size_t(s.in_channels * s.height * s.width), 0, 255, 3));
  state->weights = filled(
      pd.weights_desc(), memory::desc(w_dims, dt::s8, grouped ? tag::goihw : tag::oihw),
      random_ints<int8_t>(size_t(s.out_channels * (s.in_channels / s.groups) * s.kernel * s.kernel),
                          -128, 127, 1));
  state->bias = filled(pd.bias_desc(), bias_md, random_floats(size_t(s.out_channels), 2));
  state->dst = dnnl::memory(pd.dst_desc(), e.engine);
  const memory::desc zero_point_md({1}, dt::s32, tag::x);
  state->src_zero_point = dnnl::memory(zero_point_md, e.engine, &state->zero_point_values[0]);
  state->dst_zero_point = dnnl::memory(zero_point_md, e.engine, &state->zero_point_values[1]);
  return [state, zero_points] {
    Engine& e = onednn();
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, state->src},
                                               {DNNL_ARG_WEIGHTS, state->weights},
                                               {DNNL_ARG_BIAS, state->bias},
                                               {DNNL_ARG_DST, state->dst}};
    if (zero_points) {
      args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = state->src_zero_point;
      args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = state->dst_zero_point;
    }
    state->conv.execute(e.stream, args);
    e.stream.wait();
  };
}

}  // namespace

BenchRun prepare_conv_onednn_u8s8(const ConvShape& s, const BenchContext&) {
  return prepare_conv_u8s8(s, true);
}

BenchRun prepare_conv_onednn_u8s8_nozp(const ConvShape& s, const BenchContext&) {
  return prepare_conv_u8s8(s, false);
}

}  // namespace nibble::bench
