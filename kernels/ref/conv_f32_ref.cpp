// Scalar FP32 convolution pieces: the depthwise kernel of the reference dispatch row and the
// naive direct convolution the optimized paths are tested against.
#include "kernels/conv_f32.h"

namespace nibble::kernels::ref {

void dwconv_f32_rows(int64_t taps, const float* const* inputs, int64_t input_pitch,
                     const float* weights, int64_t width, int64_t rows, float* out,
                     const TileEpilogue* epilogue) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < width; ++i) {
      float sum = 0.0f;
      for (int64_t t = 0; t < taps; ++t) sum += weights[t] * inputs[t][r * input_pitch + i];
      out[r * width + i] = epilogue ? apply_epilogue(*epilogue, sum, 0, r * width + i) : sum;
    }
  }
}

void conv_f32_naive(const ConvF32Shape& shape, const float* x, const float* w, float* y,
                    const ConvF32Epilogue& epilogue) {
  const ConvGeometry& g = shape.geometry;
  const int64_t rows = shape.out_channels_per_group();
  const int64_t in_size = g.in_size(), out_size = g.out_size();
  for (int64_t n = 0; n < shape.batch; ++n) {
    for (int64_t oc = 0; oc < shape.out_channels; ++oc) {
      const int64_t group = oc / rows;
      const float* image = x + (n * shape.in_channels + group * g.channels) * in_size;
      const float* filter = w + oc * g.channels * g.kernel_size();
      float* out = y + (n * shape.out_channels + oc) * out_size;
      for (int64_t o = 0; o < out_size; ++o) {
        const int64_t od = o / (g.out[1] * g.out[2]), oh = o / g.out[2] % g.out[1],
                      ow = o % g.out[2];
        double sum = 0.0;
        for (int64_t c = 0; c < g.channels; ++c) {
          for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
            const int64_t id = od * g.stride[0] - g.pad[0] + kd * g.dilation[0];
            if (id < 0 || id >= g.in[0]) continue;
            for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
              const int64_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dilation[1];
              if (ih < 0 || ih >= g.in[1]) continue;
              for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
                const int64_t iw = ow * g.stride[2] - g.pad[2] + kw * g.dilation[2];
                if (iw < 0 || iw >= g.in[2]) continue;
                sum += double(image[c * in_size + (id * g.in[1] + ih) * g.in[2] + iw]) *
                       double(filter[((c * g.kernel[0] + kd) * g.kernel[1] + kh) * g.kernel[2] + kw]);
              }
            }
          }
        }
        const Epilogue e{epilogue.bias, epilogue.activation, epilogue.clip_min, epilogue.clip_max,
                         epilogue.residual ? epilogue.residual + n * shape.out_channels * out_size
                                           : nullptr,
                         out_size, epilogue.residual_first};
        out[o] = apply_epilogue(e, static_cast<float>(sum), oc, o);
      }
    }
  }
}

}  // namespace nibble::kernels::ref
