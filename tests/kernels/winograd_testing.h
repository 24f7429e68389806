// The 3x3 stride-1 convolution shapes of the Winograd tests (FP32, weight-only, int16).
#pragma once

#include <cstdint>

#include "kernels/conv_f32.h"

namespace winograd_testing {

struct Case {
  int64_t batch, cin, cout, h, w, pad_begin, pad_end;
};

inline nibble::kernels::ConvF32Shape make_shape(const Case& tc) {
  nibble::kernels::ConvF32Shape s;
  s.batch = tc.batch;
  s.in_channels = tc.cin;
  s.out_channels = tc.cout;
  nibble::kernels::ref::ConvGeometry& g = s.geometry;
  g.channels = tc.cin;
  g.in[1] = tc.h;
  g.in[2] = tc.w;
  for (int d = 1; d < 3; ++d) {
    g.kernel[d] = 3;
    g.pad[d] = tc.pad_begin;
    g.out[d] = g.in[d] + tc.pad_begin + tc.pad_end - 2;
  }
  return s;
}

}  // namespace winograd_testing
