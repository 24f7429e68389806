// Operator definitions: for each (domain, op_type) an `infer` step that validates the node and
// gives every output a dtype and a static shape, an optional `prepare` step run once at load
// (e.g. packing constant weights), and a `compute` step that fills preallocated outputs.
//
// Op families live one per file in engine/ops/ and register themselves in register_all_ops().
// Opset differences are handled inside the functions through ctx.opset (ONNX "since version"
// semantics: the model's opset import for the op's domain).
#pragma once

#include <cstdint>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/exec/thread_pool.h"
#include "engine/ir/graph.h"

namespace nibble {

// Thrown by InferContext::require_constant when the value is computed from small runtime graph
// inputs only (an `axes` or `pads` tensor fed at run time): the session then plans once per value
// of those inputs.
class ConstantInputRequired : public Error {
 public:
  ConstantInputRequired(const std::string& message, std::vector<std::string> input_names)
      : Error(ErrorKind::Unsupported, message), inputs(std::move(input_names)) {}
  std::vector<std::string> inputs;
};

// What infer/prepare see of a node: input types, static shapes and load-time constants.
class InferContext {
 public:
  InferContext(const Graph& graph, const Node& node, int64_t opset,
               size_t max_tensor_bytes = SIZE_MAX);

  const Node& node;
  const int64_t opset;
  // The session's allocation limit (SessionOptions::max_tensor_bytes), for what prepare builds.
  const size_t max_tensor_bytes;

  size_t num_inputs() const { return node.inputs.size(); }
  bool has_input(size_t i) const;  // present and not an omitted optional ("")
  DType input_dtype(size_t i) const;
  const Shape& input_shape(size_t i) const;
  int64_t input_rank(size_t i) const { return static_cast<int64_t>(input_shape(i).size()); }
  const Tensor* input_constant(size_t i) const;  // nullptr when only known at run time
  // The constant value of input i, or Error(Unsupported) "<what> must be a constant".
  const Tensor& require_constant(size_t i, const char* what) const;

  size_t num_outputs() const { return node.outputs.size(); }
  bool has_output(size_t i) const;
  void set_output(size_t i, DType dtype, Shape shape);
  DType output_dtype(size_t i) const { return out_types_.at(i).first; }
  const Shape& output_shape(size_t i) const { return out_types_.at(i).second; }

  // Error(InvalidModel) / Error(Unsupported) prefixed with the node description.
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void unsupported(const std::string& message) const;
  // Checks helpers: input i must exist / have one of these dtypes.
  void require_input(size_t i) const;
  void require_dtype(size_t i, std::initializer_list<DType> allowed) const;

  std::vector<std::pair<DType, Shape>>& output_types() { return out_types_; }

 private:
  const Graph& graph_;
  std::vector<std::pair<DType, Shape>> out_types_;
};

// What compute sees at run time.
class ComputeContext {
 public:
  ComputeContext(const Node& node, int64_t opset, std::vector<const Tensor*> inputs,
                 std::vector<Tensor*> outputs, ThreadPool& pool, const void* state)
      : node(node), opset(opset), inputs_(std::move(inputs)), outputs_(std::move(outputs)),
        pool_(pool), state_(state) {}

  const Node& node;
  const int64_t opset;

  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  const Tensor& input(size_t i) const;
  size_t num_outputs() const { return outputs_.size(); }
  Tensor& output(size_t i) const { return *outputs_.at(i); }  // allocated with inferred shape
  ThreadPool& pool() const { return pool_; }
  template <typename T> const T& state() const { return *static_cast<const T*>(state_); }

  [[noreturn]] void fail(const std::string& message) const;  // Error(InvalidArgument), run-time

 private:
  std::vector<const Tensor*> inputs_;
  std::vector<Tensor*> outputs_;
  ThreadPool& pool_;
  const void* state_;
};

// What `nibble inspect` and `nibble bench --profile` report for a node: the kernel chosen at
// load and the bytes of weights it packed (0 when it packs none).
struct KernelInfo {
  std::string family;  // e.g. "conv_f32", "gemm_w4a8"; empty = the op's generic implementation
  std::string isa;     // "ref", "avx2", "avx512", "avx512vnni"
  std::string tile;    // e.g. "6x16"
  size_t packed_weight_bytes = 0;
  std::string note;    // e.g. why a quantized pattern fell back to float
  // Constant inputs that prepare copied into its state and compute never reads: the plan drops
  // their data once every reader has packed them.
  std::vector<size_t> packed_inputs;
};

struct OpDef {
  std::function<void(InferContext&)> infer;
  std::function<void(const ComputeContext&)> compute;
  // Optional; its result is handed to compute as ctx.state<T>().
  std::function<std::shared_ptr<const void>(const InferContext&)> prepare;
  // Outputs depend only on input shapes (Shape, Size): folded at load even for runtime inputs.
  bool reads_only_shapes = false;
  // Optional; describes the kernel `prepare` chose (state is prepare's result, may be null).
  std::function<KernelInfo(const InferContext&, const void* state)> kernel_info = {};
};

class OpRegistry {
 public:
  static const OpRegistry& instance();  // every op nibble supports
  void add(const std::string& domain, const std::string& op_type, OpDef def);
  const OpDef* find(const std::string& domain, const std::string& op_type) const;
  std::vector<std::string> op_names() const;  // "domain:op" or "op" for the ONNX domain

 private:
  std::map<std::pair<std::string, std::string>, OpDef> defs_;
};

// One per op family file.
void register_elementwise_ops(OpRegistry& r);  // engine/ops/elementwise.cpp: unary/binary math,
                                               // activations, comparisons, logic, Where, Cast, Clip
void register_reduce_ops(OpRegistry& r);       // engine/ops/reduce.cpp: Reduce*, ArgMax/Min,
                                               // Softmax, LogSoftmax, Hardmax
void register_tensor_ops(OpRegistry& r);       // engine/ops/tensor.cpp: Reshape, Transpose, Concat,
                                               // Split, Slice, Gather*, Tile, Expand, Pad, TopK, ...
void register_nn_ops(OpRegistry& r);           // engine/ops/nn.cpp: Conv, MatMul, Gemm, pools, BN,
                                               // Resize
void register_quant_ops(OpRegistry& r);        // engine/ops/quant.cpp: Q/DQ, DynamicQuantizeLinear,
                                               // ConvInteger, MatMulInteger, QLinearConv/MatMul
void register_control_ops(OpRegistry& r);      // engine/ops/control.cpp: Identity, Constant, Shape,
                                               // Size, ConstantOfShape, Range
void register_qlinear_fused_ops(OpRegistry& r);  // engine/ops/qconv.cpp: nibble.QConv (fuse_qdq)
void register_fused_conv_ops(OpRegistry& r);   // engine/ops/fused_conv.cpp: nibble:FusedConv

}  // namespace nibble
