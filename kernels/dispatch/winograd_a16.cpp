// Weight-only Winograd convolution (kernels/winograd_a16.h): packing at 4/8 bits, the per-run
// dequantize-and-transform into the FP32 driver's packed U, and the epilogues the FP32 driver
// does not fuse.
#include "kernels/winograd_a16.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "kernels/dispatch/aligned_scratch.h"
#include "kernels/dispatch/winograd_a16_internal.h"
#include "kernels/quantize_f32.h"
#include "nibble/error.h"

namespace nibble::kernels {
namespace {

struct OutputScratch {};

constexpr int kTaps = 9;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

void transform_panel(Isa isa, int tile, const uint8_t* packed, int64_t section_bytes, int bits,
                     const float* scale_pattern, int64_t period, int64_t count, float* u,
                     int64_t point_stride) {
#if defined(__x86_64__)
  if (isa >= Isa::Avx512) {
    return avx512::winograd_a16_transform_panel(tile, packed, section_bytes, bits, scale_pattern,
                                                period, count, u, point_stride);
  }
  if (isa >= Isa::Avx2) {
    return avx2::winograd_a16_transform_panel(tile, packed, section_bytes, bits, scale_pattern,
                                              period, count, u, point_stride);
  }
#endif
  ref::winograd_a16_transform_panel(tile, packed, section_bytes, bits, scale_pattern, period,
                                    count, u, point_stride);
}

}  // namespace

int64_t WinogradA16Weights::panels() const {
  const int64_t mr = kernel->gemm->mr;
  return (out_channels + mr - 1) / mr;
}

int64_t WinogradA16Weights::section_values() const {
  return round_up(in_channels * kernel->gemm->mr, 64);
}

std::string WinogradA16Weights::tile_name() const {
  return std::string(kernel->name) + " " + kernel->gemm->tile;
}

const WinogradF32Kernel* winograd_a16_choose(const ConvF32Shape& shape, Isa isa) {
  return winograd_f32_choose(shape, isa);
}

bool winograd_a16_beats_int16(const ConvF32Shape& shape) {
  return shape.in_channels >= 96 && shape.out_channels >= 96;
}

WinogradA16Weights winograd_a16_pack(const ConvF32Shape& shape, int bits, const int8_t* values,
                                     const float* scales, const WinogradF32Kernel& kernel) {
  if (bits != 4 && bits != 8) {
    throw Error(ErrorKind::InvalidArgument,
                "winograd_a16_pack: weights must be 4 or 8 bits, got " + std::to_string(bits));
  }
  WinogradA16Weights w;
  w.kernel = &kernel;
  w.bits = bits;
  w.in_channels = shape.in_channels;
  w.out_channels = shape.out_channels;
  w.scales.assign(scales, scales + shape.out_channels);
  for (float s : w.scales) {
    if (!(s > 0.0f) || !std::isfinite(s)) {
      throw Error(ErrorKind::InvalidArgument, "winograd_a16_pack: scales must be finite and positive");
    }
  }
  const int64_t mr = kernel.gemm->mr, cin = w.in_channels, section = w.section_values();
  const int64_t panel_values = kTaps * section;
  w.data.resize(size_t(w.panels() * panel_values * bits / 8));  // zero: rows past the end
  uint8_t* data = w.data.data();
  for (int64_t m = 0; m < w.out_channels; ++m) {
    for (int64_t c = 0; c < cin; ++c) {
      for (int t = 0; t < kTaps; ++t) {
        const int8_t v = values[(m * cin + c) * kTaps + t];
        if (bits == 4 && (v < -8 || v > 7)) {
          throw Error(ErrorKind::InvalidArgument,
                      "winograd_a16_pack: 4-bit weight " + std::to_string(v) + " outside [-8, 7]");
        }
        const int64_t i = m / mr * panel_values + t * section + c * mr + m % mr;
        if (bits == 8) {
          data[i] = static_cast<uint8_t>(v);
          continue;
        }
        uint8_t& byte = data[i / 64 * 32 + i % 32];
        const auto nibble = static_cast<uint8_t>(v & 0x0F);
        byte = i % 64 < 32 ? uint8_t((byte & 0xF0) | nibble) : uint8_t((byte & 0x0F) | (nibble << 4));
      }
    }
  }
  return w;
}

void winograd_a16_transform(const WinogradA16Weights& w, int64_t panel_begin, int64_t panel_end,
                            float* u, int64_t point_stride) {
  const WinogradF32Kernel& kernel = *w.kernel;
  const int64_t mr = kernel.gemm->mr, cin = w.in_channels, section = w.section_values();
  const int64_t section_bytes = section * w.bits / 8;
  // Value j of a section is scaled by pattern[j % period]: the panel's MR scales repeated to a
  // whole number of 16-float vectors.
  const int64_t period = std::lcm<int64_t>(mr, 16);
  float pattern[64];
  for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
    for (int64_t j = 0; j < period; ++j) {
      const int64_t row = panel * mr + j % mr;
      pattern[j] = row < w.out_channels ? w.scales[size_t(row)] : 0.0f;
    }
    transform_panel(kernel.isa, kernel.tile, w.data.data() + panel * kTaps * section_bytes,
                    section_bytes, w.bits, pattern, period, cin * mr, u + panel * mr * cin,
                    point_stride);
  }
}

void winograd_a16_conv(const ConvF32Shape& shape, const WinogradA16Weights& w, const float* x,
                       const QEpilogue& epilogue, const QOutput& out, ThreadPool* pool) {
  const WinogradF32Kernel& kernel = *w.kernel;
  const int64_t out_size = shape.geometry.out_size(), cout = shape.out_channels;
  if (shape.in_channels != w.in_channels || cout != w.out_channels || out.col_stride != 1 ||
      out.row_stride != out_size || !winograd_f32_applies(shape)) {
    throw Error(ErrorKind::InvalidArgument,
                "winograd_a16_conv: shape or output layout differs from the packed weights'");
  }
  if (out.type != QType::F32 && out.type != QType::U8 && out.type != QType::S8) {
    throw Error(ErrorKind::InvalidArgument, "winograd_a16_conv: output must be F32, U8 or S8");
  }
  // U of every transform point, in the calling thread's buffer (grown to the largest layer).
  thread_local ConvF32Weights transformed;
  transformed.winograd = &kernel;
  transformed.gemm = kernel.gemm;
  // Points one cache line further apart than their size: sizes are often multiples of 4 KiB,
  // and the transform's 36 store streams would then share an L1 set.
  transformed.group_stride = gemm_f32_packed_a_size(*kernel.gemm, cout, w.in_channels) + 16;
  const size_t u_floats = size_t(kernel.points() * transformed.group_stride);
  if (transformed.data.size() < u_floats) transformed.data.resize(u_floats);
  const int64_t panels = w.panels();
  // Pool threads see their own thread_local: they get the caller's buffer by pointer.
  float* const u = transformed.data.data();
  const int64_t point_stride = transformed.group_stride;
  auto transform = [&w, u, point_stride](int64_t begin, int64_t end) {
    winograd_a16_transform(w, begin, end, u, point_stride);
  };
  if (pool && pool->num_threads() > 1) {
    pool->parallel_for(panels, transform);
  } else {
    transform(0, panels);
  }

  // The QEpilogue as the driver's where it has one (SiLU with a clamp has none).
  ConvF32Epilogue fused;
  fused.bias = epilogue.bias;
  const bool clamped = epilogue.clamp_min > -std::numeric_limits<float>::infinity() ||
                       epilogue.clamp_max < std::numeric_limits<float>::infinity();
  const bool apart = epilogue.silu && clamped;
  if (epilogue.silu && !clamped) {
    fused.activation = Activation::SiLU;
  } else if (!epilogue.silu && epilogue.clamp_min == 0.0f &&
             epilogue.clamp_max == std::numeric_limits<float>::infinity()) {
    fused.activation = Activation::Relu;
  } else if (!epilogue.silu && clamped) {
    fused.activation = Activation::Clip;
    fused.clip_min = epilogue.clamp_min;
    fused.clip_max = epilogue.clamp_max;
  }
  const int64_t rows = shape.batch * cout;
  if (out.type == QType::F32 && !apart) {
    winograd_f32_run(shape, transformed, x, static_cast<float*>(out.data), fused, pool);
    return;
  }
  // Float results first, then SiLU-and-clamp (as ref::qgemm_reference) and the quantization
  // (the QuantizeLinear kernel, so U8/S8 outputs equal QuantizeLinear of the F32 ones).
  float* y = out.type == QType::F32 ? static_cast<float*>(out.data)
                                    : thread_scratch<OutputScratch>(rows * out_size);
  winograd_f32_run(shape, transformed, x, y, fused, pool);
  auto finish = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* row = y + r * out_size;
      if (apart) {
        for (int64_t i = 0; i < out_size; ++i) {
          const float v = row[i] / (1.0f + std::exp(-row[i]));
          row[i] = std::min(std::max(v, epilogue.clamp_min), epilogue.clamp_max);
        }
      }
      if (out.type == QType::U8) {
        quantize_f32_kernel<uint8_t>(kernel.isa)(row, static_cast<uint8_t*>(out.data) + r * out_size,
                                                 out_size, out.scale, out.zero_point);
      } else if (out.type == QType::S8) {
        quantize_f32_kernel<int8_t>(kernel.isa)(row, static_cast<int8_t*>(out.data) + r * out_size,
                                                out_size, out.scale, out.zero_point);
      }
    }
  };
  if (pool && pool->num_threads() > 1) {
    pool->parallel_for(rows, finish);
  } else {
    finish(0, rows);
  }
}

}  // namespace nibble::kernels
