// Reference kernels: portable C++ (no intrinsics) that the compiler auto-vectorizes for the
// baseline ISA. They are the oracle every hand-written AVX2/AVX-512 kernel is tested against, and
// fast enough on their own to run the real models (a blocked GEMM with a register tile).
//
// GEMM layout, GotoBLAS style. C[M x N] = A[M x K] · B[K x N] is computed from
//   - packed A: ceil(M / kGemmMR) panels; panel p holds rows [p*MR, p*MR + MR) as K consecutive
//     groups of MR values (column k of the panel), rows past M zero-filled. Panel stride = MR * K.
//   - packed B blocks: a block covers kc <= kGemmKC rows and nc columns of B, stored as
//     ceil(nc / kGemmNR) strips; strip s holds columns [s*NR, s*NR + NR) as kc consecutive groups
//     of NR values (row k of the strip), columns past nc zero-filled. Strip stride = NR * kc.
// The register tile is MR x NR floats; a block product keeps one B strip in L1 while it walks
// all A panels.
//
// Integer GEMMs (uint8/int8 with zero points, int32 result) reuse the float tile: operands are
// packed as float (value - zero_point), which lies in [-255, 255], so every product is at most
// 65025 and a sum of kGemmKC = 256 of them stays below 2^24 — float arithmetic over one block is
// exact, and blocks are summed in int32.
#pragma once

#include <cstdint>

namespace nibble::kernels::ref {

constexpr int64_t kGemmMR = 4;    // rows of the register tile
constexpr int64_t kGemmNR = 8;    // columns of the register tile
constexpr int64_t kGemmKC = 256;  // maximum depth of one packed B block

// Floats needed for packed A of an M x K matrix.
int64_t gemm_packed_a_size(int64_t m, int64_t k);
// Floats needed for one packed B block of kc x nc.
int64_t gemm_packed_b_size(int64_t kc, int64_t nc);

// Packs A[m x k] where element (i, j) is a[i * row_stride + j * col_stride] (a transposed A is
// just swapped strides).
void gemm_pack_a(int64_t m, int64_t k, const float* a, int64_t row_stride, int64_t col_stride,
                 float* packed);
// Integer A packed as float (a - zero_points[i]), one zero point per row.
void gemm_pack_a(int64_t m, int64_t k, const uint8_t* a, int64_t row_stride, int64_t col_stride,
                 const int32_t* zero_points, float* packed);
void gemm_pack_a(int64_t m, int64_t k, const int8_t* a, int64_t row_stride, int64_t col_stride,
                 const int32_t* zero_points, float* packed);

// Packs the kc x nc block of B whose element (i, j) is b[i * row_stride + j * col_stride].
void gemm_pack_b(int64_t kc, int64_t nc, const float* b, int64_t row_stride, int64_t col_stride,
                 float* packed);
// Integer B packed as float (b - zero_points[j]), one zero point per column of the block.
void gemm_pack_b(int64_t kc, int64_t nc, const uint8_t* b, int64_t row_stride, int64_t col_stride,
                 const int32_t* zero_points, float* packed);
void gemm_pack_b(int64_t kc, int64_t nc, const int8_t* b, int64_t row_stride, int64_t col_stride,
                 const int32_t* zero_points, float* packed);

// One block product: for rows [0, m) and the nc columns of a packed B block of depth kc,
//   C = (accumulate ? C : 0) + A[:, k0 : k0 + kc] · B_block
// `packed_a` points at column k0 of panel 0 (packed + k0 * kGemmMR) and `a_panel_stride` is the
// packed A panel stride (kGemmMR * K). C is row-major with leading dimension ldc.
void sgemm_block(int64_t m, int64_t nc, int64_t kc, const float* packed_a, int64_t a_panel_stride,
                 const float* packed_b, float* c, int64_t ldc, bool accumulate);
// Same for operands packed from integers; kc must not exceed kGemmKC (exactness, see above).
void qgemm_block(int64_t m, int64_t nc, int64_t kc, const float* packed_a, int64_t a_panel_stride,
                 const float* packed_b, int32_t* c, int64_t ldc, bool accumulate);

// Whole-matrix C[m x n] = A · B with A, B given by strides as in the pack functions; C row-major
// with leading dimension ldc. Single-threaded: callers split rows or columns across threads.
void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_row_stride,
           int64_t a_col_stride, const float* b, int64_t b_row_stride, int64_t b_col_stride,
           float* c, int64_t ldc);
// C[m x n] = sum_k (A[i,k] - a_zero_points[i]) * (B[k,j] - b_zero_points[j]), int32, exact.
// a_zero_points has m entries, b_zero_points n entries. TA/TB are uint8_t or int8_t.
template <typename TA, typename TB>
void qgemm(int64_t m, int64_t n, int64_t k, const TA* a, int64_t a_row_stride, int64_t a_col_stride,
           const int32_t* a_zero_points, const TB* b, int64_t b_row_stride, int64_t b_col_stride,
           const int32_t* b_zero_points, int32_t* c, int64_t ldc);

// ---- convolution helpers ----------------------------------------------------------------------

// Geometry of one group of an N-D convolution, N <= 3; lower-rank convolutions fill the leading
// spatial dimensions with size 1 (kernel 1, stride 1, dilation 1, pad 0).
struct ConvGeometry {
  int64_t channels = 0;        // input channels of the group
  int64_t in[3] = {1, 1, 1};   // input spatial size (D, H, W)
  int64_t out[3] = {1, 1, 1};  // output spatial size
  int64_t kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t dilation[3] = {1, 1, 1};
  int64_t pad[3] = {0, 0, 0};  // leading pads; trailing pads only shape `out`

  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
  // Rows of the im2col matrix: channels x kernel taps, in the order of a [C, kD, kH, kW] weight.
  int64_t im2col_rows() const { return channels * kernel_size(); }
  // True when the im2col matrix is the input itself (1x1 kernel, stride 1, no padding).
  bool is_pointwise() const;
};

// Packs rows [k0, k0 + kc) and columns [n0, n0 + nc) of the im2col matrix of `image` (the
// group's first channel; channels are in_size() apart) straight into a packed B block;
// kc <= kGemmKC.
// Padding reads as 0. Integer images are packed as float (x - zero_point), padding as 0 too
// (ONNX ConvInteger/QLinearConv pad with the zero point).
void im2col_pack_b(const ConvGeometry& g, const float* image, int64_t k0, int64_t kc, int64_t n0,
                   int64_t nc, float* packed);
void im2col_pack_b(const ConvGeometry& g, const uint8_t* image, int32_t zero_point, int64_t k0,
                   int64_t kc, int64_t n0, int64_t nc, float* packed);
void im2col_pack_b(const ConvGeometry& g, const int8_t* image, int32_t zero_point, int64_t k0,
                   int64_t kc, int64_t n0, int64_t nc, float* packed);

// Adjoint of im2col: adds column j of row (c, tap) of `cols` (im2col_rows() x out_size(),
// row-major) to image element (c, out_j * stride - pad + tap * dilation) when that lies inside
// the image (g.channels x in_size()). A transposed convolution is a GEMM followed by this.
void col2im_add(const ConvGeometry& g, const float* cols, float* image);

// Direct convolution of one channel with its own kernel (depthwise), 2-D geometry only
// (g.in[0] == g.out[0] == g.kernel[0] == 1, g.channels == 1). `weights` holds kernel_size()
// taps; out receives out_size() values (overwritten). Padding contributes nothing.
void depthwise_conv2d(const ConvGeometry& g, const float* image, const float* weights, float* out);
// Integer variant: out = sum (x - x_zero_point) * w over valid taps, with w already zero-point
// adjusted.
void depthwise_conv2d(const ConvGeometry& g, const uint8_t* image, int32_t x_zero_point,
                      const int32_t* weights, int32_t* out);
void depthwise_conv2d(const ConvGeometry& g, const int8_t* image, int32_t x_zero_point,
                      const int32_t* weights, int32_t* out);

}  // namespace nibble::kernels::ref
