// nibble — public C++ API.
//
//   nibble::Session session = nibble::Session::load("yolov10n.onnx");
//   nibble::Tensor image = nibble::Tensor::view(nibble::DType::F32, {1, 3, 640, 640}, pixels);
//   std::vector<nibble::Tensor> out = session.run({{"images", image}});
//
// Thread safety: a Session is immutable after load; run(), run_profiled() and describe() may be
// called from any number of threads at once on the same Session (each call has its own
// intermediate buffers; the thread pool and the per-shape plan cache are shared and internally
// synchronized), and give bit-identical results to serial calls. Copies of a Session share the
// loaded model. Loading is thread-safe too; separate sessions share nothing. Input tensors are
// only read: they must stay unchanged while a run uses them.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nibble/dtype.h"
#include "nibble/error.h"
#include "nibble/tensor.h"

namespace nibble {

enum class OptimizationLevel {
  None,  // reference path: every node runs as written, no folding or fusion (a test oracle)
  All,   // constant folding, dead-node removal and every fusion nibble has
};

// What the activations of weight-only quantized layers (W4A16 / W8A16: nibble.QConv and
// nibble.QMatMul with float inputs) are multiplied as.
enum class WeightOnlyActivations {
  Float,  // float, against weights expanded to q * scale: the fake-quant graph's arithmetic
  Int16,  // quantized per tensor to int16 at run time (int16 x int16 -> int32 dot products):
          // faster, near-lossless; depthwise layers stay float
};

struct SessionOptions {
  int num_threads = 0;  // threads used by one run; 0 = all hardware threads
  OptimizationLevel optimization = OptimizationLevel::All;
  // Fixes dynamic or symbolic input dimensions before the first run (name -> full shape).
  // Inputs left dynamic are planned on first use with the shape they are given.
  std::map<std::string, Shape> input_shapes;
  // Upper bound for any single tensor nibble allocates (hostile models declare huge shapes).
  size_t max_tensor_bytes = size_t{16} << 30;
  WeightOnlyActivations weight_only_activations = WeightOnlyActivations::Float;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::Undefined;
  Shape shape;  // -1 for a dynamic dimension
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// One node of the planned graph (after constant folding and fusion) and its time in a run.
struct NodeProfile {
  std::string name;     // the node's name in the model; a fused node keeps the name of its root
  std::string op_type;  // e.g. "Conv", or the fused op nibble runs in its place
  std::string kernel;   // the kernel chosen at load ("conv_f32 avx2 6x16"); empty: generic code
  std::vector<Shape> input_shapes;  // [] for an omitted optional input
  std::vector<Shape> output_shapes;
  double seconds = 0;  // wall time: output allocation, compute, release of dead inputs
};

class Session {
 public:
  // Loads an ONNX model. External data files are resolved relative to the model's directory.
  static Session load(const std::string& path, const SessionOptions& options = {});
  // Loads an ONNX model from memory; external data (if any) is resolved against `base_dir`
  // (refused when empty).
  static Session load_bytes(const void* data, size_t size, const SessionOptions& options = {},
                            const std::string& base_dir = "");

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  const SessionOptions& options() const;

  // Runs the model. Every graph input must be given (by name) with its declared dtype and a
  // shape matching its static dimensions. Returns the requested outputs in that order (all
  // graph outputs, in graph order, when `output_names` is empty).
  std::vector<Tensor> run(const NamedTensors& inputs,
                          const std::vector<std::string>& output_names = {}) const;
  // Like run(), and fills `profile` with every executed node in execution order.
  std::vector<Tensor> run_profiled(const NamedTensors& inputs,
                                   std::vector<NodeProfile>& profile) const;

  // Human-readable listing of the planned graph for the given (or declared) input shapes:
  // one line per node with op, output shapes and kernel.
  std::string describe(const std::map<std::string, Shape>& input_shapes = {}) const;

  struct Impl;

 private:
  explicit Session(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace nibble
