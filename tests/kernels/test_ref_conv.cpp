// Reference convolution helpers: im2col packing + block GEMM and the direct depthwise kernel
// against a naive convolution, over 1-D/2-D/3-D geometries with strides, dilations and pads;
// col2im against its definition as the adjoint of im2col.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/ref.h"

using namespace nibble::kernels::ref;

namespace {

// Output size of one dimension with pads on both sides.
int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pad_begin, int64_t pad_end) {
  return (in + pad_begin + pad_end - (k - 1) * d - 1) / s + 1;
}

ConvGeometry geometry(int64_t channels, std::vector<int64_t> in, std::vector<int64_t> kernel,
                      std::vector<int64_t> stride, std::vector<int64_t> dilation,
                      std::vector<int64_t> pad) {
  ConvGeometry g;
  g.channels = channels;
  const size_t offset = 3 - in.size();
  for (size_t i = 0; i < in.size(); ++i) {
    g.in[offset + i] = in[i];
    g.kernel[offset + i] = kernel[i];
    g.stride[offset + i] = stride[i];
    g.dilation[offset + i] = dilation[i];
    g.pad[offset + i] = pad[i];
    // Trailing pad of one more than the leading pad: asymmetric padding.
    g.out[offset + i] = out_dim(in[i], kernel[i], stride[i], dilation[i], pad[i], pad[i] + 1);
  }
  return g;
}

// Input value of channel c at (possibly padded) coordinates, 0 outside.
template <typename T>
double input_at(const ConvGeometry& g, const T* image, double zero, int64_t c,
                const int64_t (&x)[3]) {
  for (int d = 0; d < 3; ++d) {
    if (x[d] < 0 || x[d] >= g.in[d]) return 0.0;
  }
  return double(image[c * g.in_size() + (x[0] * g.in[1] + x[1]) * g.in[2] + x[2]]) - zero;
}

// out[m, o] = sum over c, taps of w[m, c, taps] * x[c, o * stride - pad + tap * dilation]
template <typename T, typename TW>
std::vector<double> naive_conv(const ConvGeometry& g, int64_t out_channels, const T* image,
                               double zero, const TW* w) {
  std::vector<double> out(size_t(out_channels * g.out_size()), 0.0);
  for (int64_t m = 0; m < out_channels; ++m) {
    for (int64_t o = 0; o < g.out_size(); ++o) {
      const int64_t o_idx[3] = {o / (g.out[1] * g.out[2]), o / g.out[2] % g.out[1], o % g.out[2]};
      double sum = 0;
      for (int64_t c = 0; c < g.channels; ++c) {
        for (int64_t t = 0; t < g.kernel_size(); ++t) {
          const int64_t t_idx[3] = {t / (g.kernel[1] * g.kernel[2]), t / g.kernel[2] % g.kernel[1],
                                    t % g.kernel[2]};
          int64_t x[3];
          for (int d = 0; d < 3; ++d)
            x[d] = o_idx[d] * g.stride[d] - g.pad[d] + t_idx[d] * g.dilation[d];
          sum += double(w[(m * g.channels + c) * g.kernel_size() + t]) *
                 input_at(g, image, zero, c, x);
        }
      }
      out[size_t(m * g.out_size() + o)] = sum;
    }
  }
  return out;
}

// The convolution as the engine runs it: packed weights, im2col blocks of depth <= kGemmKC and
// column tiles of `tile_n` output positions.
std::vector<float> gemm_conv(const ConvGeometry& g, int64_t out_channels, const float* image,
                             const float* w, int64_t tile_n) {
  const int64_t depth = g.im2col_rows(), positions = g.out_size();
  std::vector<float> packed_a(size_t(gemm_packed_a_size(out_channels, depth)));
  gemm_pack_a(out_channels, depth, w, depth, 1, packed_a.data());
  std::vector<float> packed_b(size_t(gemm_packed_b_size(kGemmKC, tile_n)));
  std::vector<float> out(size_t(out_channels * positions));
  for (int64_t n0 = 0; n0 < positions; n0 += tile_n) {
    const int64_t nc = std::min(tile_n, positions - n0);
    for (int64_t k0 = 0; k0 < depth; k0 += kGemmKC) {
      const int64_t kc = std::min(kGemmKC, depth - k0);
      im2col_pack_b(g, image, k0, kc, n0, nc, packed_b.data());
      sgemm_block(out_channels, nc, kc, packed_a.data() + k0 * kGemmMR, kGemmMR * depth,
                  packed_b.data(), out.data() + n0, positions, k0 > 0);
    }
  }
  return out;
}

struct Case {
  int64_t channels, out_channels;
  std::vector<int64_t> in, kernel, stride, dilation, pad;
};

const Case kCases[] = {
    {3, 5, {11}, {3}, {1}, {1}, {1}},
    {2, 4, {9}, {2}, {2}, {3}, {0}},
    {3, 16, {13, 12}, {3, 3}, {2, 2}, {1, 1}, {1, 1}},
    {4, 7, {10, 9}, {1, 1}, {1, 1}, {1, 1}, {0, 0}},  // pointwise: im2col is the image
    {5, 3, {9, 14}, {2, 3}, {1, 2}, {2, 1}, {2, 0}},
    {30, 9, {7, 8}, {3, 3}, {1, 1}, {1, 1}, {1, 1}},  // depth 270 > kGemmKC
    {2, 3, {5, 6, 7}, {2, 3, 2}, {1, 2, 1}, {2, 1, 1}, {1, 0, 1}},
};

}  // namespace

TEST_CASE("im2col packing + block GEMM equals a naive convolution") {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const Case& c : kCases) {
    const ConvGeometry g = geometry(c.channels, c.in, c.kernel, c.stride, c.dilation, c.pad);
    std::vector<float> image(size_t(g.channels * g.in_size())),
        w(size_t(c.out_channels * g.im2col_rows()));
    for (float& v : image) v = dist(rng);
    for (float& v : w) v = dist(rng);
    const std::vector<double> expected = naive_conv(g, c.out_channels, image.data(), 0.0, w.data());
    for (int64_t tile_n : {8, 24, 256}) {
      const std::vector<float> got = gemm_conv(g, c.out_channels, image.data(), w.data(), tile_n);
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - expected[i]));
      CAPTURE(c.channels);
      CAPTURE(tile_n);
      CHECK(worst < 1e-4);
    }
  }
}

TEST_CASE("integer im2col subtracts the zero point and pads with zero") {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> byte(0, 255);
  const ConvGeometry g = geometry(3, {6, 7}, {3, 3}, {1, 2}, {1, 1}, {1, 2});
  const int64_t out_channels = 5, depth = g.im2col_rows(), positions = g.out_size();
  std::vector<uint8_t> image(size_t(g.channels * g.in_size()));
  std::vector<int8_t> w(size_t(out_channels * depth));
  for (auto& v : image) v = uint8_t(byte(rng));
  for (auto& v : w) v = int8_t(byte(rng) - 128);
  const int32_t x_zero = 131;
  std::vector<int32_t> w_zero(static_cast<size_t>(out_channels));
  for (int64_t m = 0; m < out_channels; ++m) w_zero[size_t(m)] = int32_t(m * 11 - 20);

  std::vector<float> packed_a(size_t(gemm_packed_a_size(out_channels, depth)));
  gemm_pack_a(out_channels, depth, w.data(), depth, 1, w_zero.data(), packed_a.data());
  std::vector<float> packed_b(size_t(gemm_packed_b_size(depth, positions)));
  im2col_pack_b(g, image.data(), x_zero, 0, depth, 0, positions, packed_b.data());
  std::vector<int32_t> got(size_t(out_channels * positions));
  qgemm_block(out_channels, positions, depth, packed_a.data(), kGemmMR * depth, packed_b.data(),
              got.data(), positions, false);

  std::vector<int32_t> w_adjusted(w.size());
  for (size_t i = 0; i < w.size(); ++i) w_adjusted[i] = w[i] - w_zero[i / size_t(depth)];
  const std::vector<double> expected =
      naive_conv(g, out_channels, image.data(), double(x_zero), w_adjusted.data());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(double(got[i]) == expected[i]);
}

TEST_CASE("depthwise_conv2d equals a naive single-channel convolution") {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (int64_t stride : {1, 2}) {
    for (int64_t dilation : {1, 2}) {
      for (int64_t pad : {0, 1, 3}) {
        const ConvGeometry g =
            geometry(1, {9, 11}, {3, 3}, {stride, stride}, {dilation, dilation}, {pad, pad});
        std::vector<float> image(size_t(g.in_size())), w(9);
        for (float& v : image) v = dist(rng);
        for (float& v : w) v = dist(rng);
        std::vector<float> got(size_t(g.out_size()));
        depthwise_conv2d(g, image.data(), w.data(), got.data());
        const std::vector<double> expected = naive_conv(g, 1, image.data(), 0.0, w.data());

        std::vector<int8_t> q_image(image.size());
        std::vector<int32_t> q_w(w.size()), q_got(got.size());
        for (size_t i = 0; i < image.size(); ++i) q_image[i] = int8_t(std::lround(image[i] * 100));
        for (size_t i = 0; i < w.size(); ++i) q_w[i] = int32_t(std::lround(w[i] * 100));
        depthwise_conv2d(g, q_image.data(), -7, q_w.data(), q_got.data());
        const std::vector<double> q_expected = naive_conv(g, 1, q_image.data(), -7.0, q_w.data());
        for (size_t i = 0; i < got.size(); ++i) {
          CHECK(std::abs(got[i] - expected[i]) < 1e-5);
          CHECK(double(q_got[i]) == q_expected[i]);
        }
      }
    }
  }
}

TEST_CASE("col2im_add is the adjoint of im2col") {
  // <im2col(x), y> == <x, col2im(y)> for every x, y: checked on random vectors.
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const Case& c : kCases) {
    const ConvGeometry g = geometry(c.channels, c.in, c.kernel, c.stride, c.dilation, c.pad);
    const int64_t rows = g.im2col_rows(), positions = g.out_size();
    std::vector<float> x(size_t(g.channels * g.in_size())), y(size_t(rows * positions));
    for (float& v : x) v = dist(rng);
    for (float& v : y) v = dist(rng);
    // Unpacked im2col of x through the packing helper, one column strip at a time.
    double lhs = 0;
    std::vector<float> packed(size_t(gemm_packed_b_size(kGemmKC, positions)));
    for (int64_t k0 = 0; k0 < rows; k0 += kGemmKC) {
      const int64_t kc = std::min(kGemmKC, rows - k0);
      im2col_pack_b(g, x.data(), k0, kc, 0, positions, packed.data());
      for (int64_t r = 0; r < kc; ++r) {
        for (int64_t j = 0; j < positions; ++j) {
          const float v = packed[size_t((j / kGemmNR) * kGemmNR * kc + r * kGemmNR + j % kGemmNR)];
          lhs += double(v) * y[size_t((k0 + r) * positions + j)];
        }
      }
    }
    std::vector<float> back(x.size(), 0.0f);
    col2im_add(g, y.data(), back.data());
    double rhs = 0;
    for (size_t i = 0; i < x.size(); ++i) rhs += double(x[i]) * back[i];
    CAPTURE(c.channels);
    CHECK(std::abs(lhs - rhs) < 1e-3);
  }
}
