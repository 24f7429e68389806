// GPTQ rounding of quantized weights (Frantar et al., "GPTQ: Accurate Post-Training Quantization
// for Generative Pre-trained Transformers", 2022), used by `nibble quantize` for 4-bit weights.
//
// Round-to-nearest 4-bit weights lose most of a small detector's accuracy (YOLOv10n: 0.44 ->
// 0.10 mAP50-95 on coco-mini). GPTQ rounds one input column at a time and spreads each column's
// rounding error over the columns not yet rounded, weighted by the inverse Hessian of the layer's
// squared output error, H = sum over calibration samples of x x^T, with x the layer's input
// column (an im2col column for a convolution). The scales stay those given (per channel or per
// tensor); only the integer values change. Columns go in decreasing order of H's diagonal
// ("act order"), with 0.1% dampening of the diagonal (better than the usual 1% on YOLOv10n).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "nibble_onnx/onnx.pb.h"

namespace nibble::quantize {

// x x^T summed over sampled input columns of one layer, one matrix per convolution group
// (depth x depth, row-major, depth = input channels per group x kernel taps, or K of a MatMul).
struct LayerHessian {
  int64_t depth = 0;
  std::vector<std::vector<double>> groups;
  int64_t samples = 0;
};

// Accumulates the Hessians of the Conv (2-D, rank-4 input), MatMul and Gemm layers named by
// their first output, from their float input tensors observed on calibration runs.
class HessianCollector {
 public:
  // `layers`: first output names of the nodes to collect for; nodes of other kinds, or with an
  // auto_pad other than NOTSET/VALID, are skipped (and keep round-to-nearest rounding).
  HessianCollector(const onnx::ModelProto& model, const std::vector<std::string>& layers);
  // The input tensors of the collected layers (what to instrument the model with).
  std::vector<std::string> input_tensors() const;
  // One calibration run: `values` holds at least input_tensors().
  void observe(const std::map<std::string, const Tensor*>& values);
  const std::map<std::string, LayerHessian>& hessians() const { return hessians_; }

 private:
  struct Layer {
    std::string input;
    bool conv = false;
    int64_t group = 1, kernel_h = 1, kernel_w = 1;
    int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
    int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  };
  std::map<std::string, Layer> layers_;
  std::map<std::string, LayerHessian> hessians_;
};

// GPTQ rounding of W[rows x depth] (element (r, k) at w[r * row_stride + k * col_stride]) for one
// group whose Hessian is h (depth x depth): returns the integer values, row-major [rows x depth],
// each clamped to [qmin, qmax], with row r scaled by scales[r]; empty when h, dampened, is not
// positive definite (the caller then rounds to nearest).
std::vector<int8_t> gptq_round(const float* w, int64_t rows, int64_t depth, int64_t row_stride,
                               int64_t col_stride, const std::vector<double>& h,
                               const float* scales, int qmin, int qmax);

}  // namespace nibble::quantize
