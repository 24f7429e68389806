// Reference integer depthwise convolution (kernels/dwconv_int.h): every channel is a one-row
// qgemm_reference over its own plane, so the depthwise kernels share the GEMM's oracle.
#include "kernels/dwconv_int.h"

namespace nibble::kernels::ref {

void qdwconv_reference(int64_t taps, const int8_t* w, const float* scales, const QSource& x,
                       int64_t c_begin, int64_t c_end, const QEpilogue& epilogue,
                       const QOutput& out) {
  const ConvGeometry& g = *x.conv;
  const size_t x_bytes = x.type == QType::U8 || x.type == QType::S8 ? 1 : 4;
  const size_t y_bytes = out.type == QType::U8 || out.type == QType::S8 ? 1 : 4;
  for (int64_t c = c_begin; c < c_end; ++c) {
    QSource channel = x;
    channel.data = static_cast<const uint8_t*>(x.data) + size_t(c * g.in_size()) * x_bytes;
    QOutput plane = out;
    plane.data = static_cast<uint8_t*>(out.data) + size_t(c * out.row_stride) * y_bytes;
    QEpilogue ep = epilogue;
    if (ep.bias) ep.bias += c;
    qgemm_reference(QuantMode::A8, 1, taps, w + c * taps, taps, scales + c, channel,
                    g.out_size(), 0, g.out_size(), ep, plane);
  }
}

}  // namespace nibble::kernels::ref
