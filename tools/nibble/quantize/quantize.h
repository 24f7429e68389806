// Post-training quantization of FP32 ONNX models into QDQ form (`nibble quantize`).
//
// Weights of Conv, and of MatMul / Gemm with a constant 2-D weight, are quantized symmetrically
// ([-127, 127] at 8 bits, [-8, 7] at 4 bits) per output channel by default; 4-bit weights get the
// clipped scale with the least squared error and GPTQ rounding when calibrated (gptq.h), and
// weights that are small integers are stored exactly (scale 1);
// activations feeding those nodes are quantized per tensor (8-bit, asymmetric) from ranges
// measured on calibration inputs. Two output forms:
//   qcdq  Brevitas: int8 weight initializer -> Clip(min, max) -> DequantizeLinear; activations
//         float -> QuantizeLinear(int8) -> DequantizeLinear. Opset >= 13 (4-bit weights are int8
//         values that the Clip bounds to [-8, 7]).
//   qdq   ONNX Runtime: int8 or INT4 weight initializer -> DequantizeLinear; activations
//         QuantizeLinear(uint8) -> DequantizeLinear. Opset >= 21 (INT4 needs it); Reduce* ops of
//         older opsets get their `axes` attribute moved to an input (the opset 18 change).
// Bias stays float. Everything else in the graph is copied unchanged.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "nibble_onnx/onnx.pb.h"
#include "tools/nibble/quantize/gptq.h"

namespace nibble::quantize {

enum class Scheme { W8A16, W8A8, W4A8, W4A16 };
enum class Format { Qcdq, Qdq };
enum class CalibMethod { MinMax, Percentile, Mse };

// "w8a8" -> Scheme::W8A8 etc.; Error(InvalidArgument) naming the value otherwise.
Scheme parse_scheme(const std::string& name);
Format parse_format(const std::string& name);
CalibMethod parse_calib_method(const std::string& name);
int weight_bits(Scheme scheme);
bool quantizes_activations(Scheme scheme);

struct QuantizeOptions {
  Scheme scheme = Scheme::W8A16;
  Format format = Format::Qcdq;
  bool per_tensor = false;               // one weight scale per tensor instead of per channel
  // In w4 schemes, the weights of these layers stay 8-bit: the default_8bit_layers() when
  // keep_boundary_8bit, and the nodes named in keep_8bit.
  bool keep_boundary_8bit = true;
  std::set<std::string> keep_8bit;
};

// The layers whose weights 4-bit schemes keep at 8 bits by default, by node name (the first
// output's name for unnamed nodes): first layers (reached from a graph input through no other
// quantized layer), output layers (reaching a graph output through no other quantized layer,
// e.g. a detector's class and box convolutions, looked for through exact layers), and layers
// whose weights 8 bits hold exactly: small integers, or values already on the 8-bit grid (YOLO's
// DFL conv: 0..15, or k * 15/127 in Ultralytics' export). Where 4-bit error costs the most.
std::vector<std::string> default_8bit_layers(const onnx::ModelProto& model);

// Real-valued range of an activation tensor.
struct Range {
  float min = 0;
  float max = 0;
};

// Names of the float tensors a scheme quantizes as activations: the data inputs of the nodes
// whose weights get quantized (empty for weight-only schemes).
std::vector<std::string> activation_tensors(const onnx::ModelProto& model, const QuantizeOptions& options);

// The model with float `tensors` appended to its graph outputs, in order (also those that
// already are outputs).
onnx::ModelProto with_extra_outputs(const onnx::ModelProto& model, const std::vector<std::string>& tensors);

// Accumulates activation statistics over calibration runs and turns them into ranges.
class Calibrator {
 public:
  Calibrator(CalibMethod method, std::vector<std::string> tensors);
  // The FP32 model with the calibrated tensors added to its graph outputs.
  onnx::ModelProto instrument(const onnx::ModelProto& model) const;
  // Records one run of the instrumented model; `outputs` are all its outputs in graph order,
  // the calibrated tensors last.
  void observe(const std::vector<Tensor>& outputs);
  std::map<std::string, Range> ranges() const;
  size_t runs() const { return runs_; }

 private:
  struct Stats {
    float min = 0, max = 0;
    std::vector<float> samples;  // a bounded subsample, for percentile and MSE
  };
  CalibMethod method_;
  std::vector<std::string> tensors_;
  std::vector<Stats> stats_;
  size_t runs_ = 0;
};

// The first output names of the layers whose weights the scheme quantizes to 4 bits: those
// that GPTQ rounds when given their Hessians.
std::vector<std::string> four_bit_layers(const onnx::ModelProto& model, const QuantizeOptions& options);

// The quantized model. `ranges` must hold every activation_tensors() name for A8 schemes.
// 4-bit weights of layers found in `hessians` (keyed by the layer's first output) are rounded
// by GPTQ, the others to nearest. Throws Error(InvalidArgument) for an unknown --keep-8bit node
// and Error(InvalidModel) for weights that are not float.
onnx::ModelProto quantize_model(const onnx::ModelProto& model, const QuantizeOptions& options,
                                const std::map<std::string, Range>& ranges,
                                const std::map<std::string, LayerHessian>& hessians = {});

}  // namespace nibble::quantize
