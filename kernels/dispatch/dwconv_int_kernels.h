// Internal interface between the integer depthwise driver (dwconv_int.cpp) and its per-ISA
// kernels (kernels/x86/avx2, kernels/x86/avx512).
//
// Lane layout, shared by every kernel: a vector holds consecutive outputs of one output row, four
// to each 128-bit chunk. A run of `group_taps` horizontal taps of output j sits in j's 32-bit
// lane, built from the input row with two shuffles: vpermd moves the input dwords s*k .. s*k+3
// (s the horizontal stride) into chunk k, then vpshufb picks for lane j of the chunk the bytes
// s*j + t*d (d the horizontal dilation, t < group_taps). Both stay inside their sources when
// s <= 4 and 3*s + (group_taps - 1)*d <= 15. The lane is then multiplied by the run's weights:
//   avx512vnni: as four uint8 taps by four int8 weights, vpdpbusd (taps past the run weigh 0);
//   avx512, avx2: as two zero-extended uint16 taps by two int16 weights, vpmaddwd, two such
//                 lanes (two vpshufb) for a run of three or four taps.
// Every product is exact and the int32 sums are those of the reference.
#pragma once

#include <cstdint>

#include "kernels/dispatch/gemm_int_kernels.h"

namespace nibble::kernels::qdw_detail {

// One call: channels [c_begin, c_end) of an NCHW image, one channel per group.
struct Call {
  int64_t in_h, in_w, out_h, out_w;
  int64_t pad_top, pad_left;
  int64_t stride_h, stride_w, dilation_h, dilation_w;
  int64_t kernel_h, kernel_w;
  int group_taps;  // taps per lane run (1..4), see lane_group_taps
  // Input channel c: in_h x in_w bytes at image + c * in_h * in_w. S8 data is read as uint8
  // through x ^ 0x80 (flip_sign); zero_point is in that uint8 domain.
  const uint8_t* image;
  bool flip_sign;
  uint8_t zero_point;
  const int8_t* weights;  // [channels][kernel_h * kernel_w]
  // Output channel c at dst + c * dst_channel_stride elements of the epilogue's output type,
  // out_h * out_w of them in row-major order.
  void* dst;
  int64_t dst_channel_stride;
};

using ChannelsKernel = void (*)(const Call& call, int64_t c_begin, int64_t c_end,
                                const qgemm_detail::TileEpilogue& epilogue);

// The longest run of horizontal taps one lane can hold for stride_w and dilation_w (at most
// kernel_w); 0 when the lane layout cannot serve the stride (stride_w > 4).
inline int lane_group_taps(int64_t stride_w, int64_t dilation_w, int64_t kernel_w) {
  if (stride_w < 1 || stride_w > 4 || dilation_w < 1) return 0;
  int taps = 1;
  while (taps < 4 && taps < kernel_w && 3 * stride_w + taps * dilation_w <= 15) ++taps;
  return taps;
}

namespace avx2 {
void dwconv_int_channels(const Call& call, int64_t c_begin, int64_t c_end,
                         const qgemm_detail::TileEpilogue& epilogue);
}
namespace avx512 {
void dwconv_int_channels(const Call& call, int64_t c_begin, int64_t c_end,
                         const qgemm_detail::TileEpilogue& epilogue);
void dwconv_int_channels_vnni(const Call& call, int64_t c_begin, int64_t c_end,
                              const qgemm_detail::TileEpilogue& epilogue);
}  // namespace avx512

}  // namespace nibble::kernels::qdw_detail
