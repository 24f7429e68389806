// oneDNN baselines (Debian's libdnnl, 2.x API), at the same thread count (OpenMP, set in
// bench_main.cpp) and ISA cap (NIBBLE_ISA maps to dnnl::set_max_cpu_isa) as nibble:
//   onednn_f32 GEMM       dnnl_sgemm on row-major operands;
//   onednn_f32 conv       convolution_forward with bias and a fused swish (SiLU) post-op, every
//                         tensor in the layout oneDNN prefers (format `any`: blocked nChw16c on
//                         AVX-512), data reordered into it once outside the timed loop, as an
//                         engine that keeps blocked layouts between layers would run it;
//   onednn_f32_nchw conv  the same with source and destination in plain NCHW, nibble's layout.
#include <dnnl.hpp>

#include <memory>

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

// A memory object of `desc` filled with random values given in the plain layout `user`.
dnnl::memory filled(const dnnl::memory::desc& desc, const dnnl::memory::desc& user, unsigned seed) {
  Engine& e = onednn();
  std::vector<float> values = random_floats(user.get_size() / sizeof(float), seed);
  dnnl::memory plain(user, e.engine, values.data());
  dnnl::memory target(desc, e.engine);
  dnnl::reorder(plain, target).execute(e.stream, plain, target);
  e.stream.wait();
  return target;
}

BenchRun prepare_conv(const ConvShape& s, bool plain_layout) {
  using dnnl::memory;
  using tag = memory::format_tag;
  const memory::data_type f32 = memory::data_type::f32;
  Engine& e = onednn();
  const memory::dims src_dims{1, s.in_channels, s.height, s.width};
  const memory::dims dst_dims{1, s.out_channels, s.out_height(), s.out_width()};
  const memory::dims w_dims =
      s.groups > 1 ? memory::dims{s.groups, s.out_channels / s.groups, s.in_channels / s.groups,
                                  s.kernel, s.kernel}
                   : memory::dims{s.out_channels, s.in_channels, s.kernel, s.kernel};
  const tag activation_tag = plain_layout ? tag::nchw : tag::any;
  const memory::desc src_md(src_dims, f32, activation_tag), dst_md(dst_dims, f32, activation_tag);
  const memory::desc w_md(w_dims, f32, tag::any), bias_md({s.out_channels}, f32, tag::x);
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, w_md,
      bias_md, dst_md, {s.stride, s.stride}, {s.pad(), s.pad()}, {s.pad(), s.pad()});
  dnnl::post_ops ops;
  ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  const dnnl::convolution_forward::primitive_desc pd(desc, attr, e.engine);

  struct State {
    dnnl::convolution_forward conv;
    dnnl::memory src, weights, bias, dst;
  };
  auto state = std::make_shared<State>();
  state->conv = dnnl::convolution_forward(pd);
  state->src = filled(pd.src_desc(), memory::desc(src_dims, f32, tag::nchw), 3);
  state->weights = filled(pd.weights_desc(),
                          memory::desc(w_dims, f32, s.groups > 1 ? tag::goihw : tag::oihw), 1);
  state->bias = filled(pd.bias_desc(), bias_md, 2);
  state->dst = dnnl::memory(pd.dst_desc(), e.engine);
  return [state] {
    Engine& e = onednn();
    state->conv.execute(e.stream, {{DNNL_ARG_SRC, state->src},
                                   {DNNL_ARG_WEIGHTS, state->weights},
                                   {DNNL_ARG_BIAS, state->bias},
                                   {DNNL_ARG_DST, state->dst}});
    e.stream.wait();
  };
}

}  // namespace

BenchRun prepare_gemm_onednn_f32(const GemmShape& s, const BenchContext&) {
  struct Operands {
    std::vector<float> a, b, c;
  };
  auto data = std::make_shared<Operands>();
  data->a = random_floats(size_t(s.m * s.k), 1);
  data->b = random_floats(size_t(s.k * s.n), 2);
  data->c.resize(size_t(s.m * s.n));
  return [data, s] {
    dnnl::sgemm('N', 'N', s.m, s.n, s.k, 1.0f, data->a.data(), s.k, data->b.data(), s.n, 0.0f,
                data->c.data(), s.n);
  };
}

BenchRun prepare_conv_onednn_f32(const ConvShape& s, const BenchContext&) {
  return prepare_conv(s, false);
}

BenchRun prepare_conv_onednn_f32_nchw(const ConvShape& s, const BenchContext&) {
  return prepare_conv(s, true);
}

}  // namespace nibble::bench
