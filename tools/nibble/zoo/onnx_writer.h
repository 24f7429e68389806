// Writes an ONNX graph node by node with the naming scheme of PyTorch's exporter: nodes are
// "<scope>/<Op>", "<scope>/<Op>_1", ... and their outputs "<node>_output_<i>", so a generated
// model reads like one exported by torch.onnx (and profiles name the same layers).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nibble_onnx/onnx.pb.h"
#include "tools/nibble/zoo/node_evaluator.h"

namespace nibble::zoo {

struct Attribute {
  std::string name;
  onnx::AttributeProto proto;

  static Attribute ints(const std::string& name, const std::vector<int64_t>& values);
  static Attribute integer(const std::string& name, int64_t value);
  static Attribute real(const std::string& name, float value);
  static Attribute text(const std::string& name, const std::string& value);
};

class OnnxWriter {
 public:
  // Starts a model with the given default-domain opset and IR version.
  OnnxWriter(int64_t opset, int64_t ir_version, const std::string& graph_name);

  // From now on every node also runs in `evaluator` as it is added (null: none).
  void evaluate_with(NodeEvaluator* evaluator) { evaluator_ = evaluator; }

  // Adds a node named "<scope>/<op>" (made unique with _1, _2, ...) with `outputs` fresh outputs;
  // returns their names. An empty input name is an omitted optional input.
  std::vector<std::string> node(const std::string& scope, const std::string& op,
                                const std::vector<std::string>& inputs, int outputs = 1,
                                const std::vector<Attribute>& attributes = {});
  // Single-output shorthand.
  std::string op(const std::string& scope, const std::string& op,
                 const std::vector<std::string>& inputs,
                 const std::vector<Attribute>& attributes = {}) {
    return node(scope, op, inputs, 1, attributes)[0];
  }

  // Initializers; `name` must be unique. Return the name.
  std::string f32(const std::string& name, const std::vector<int64_t>& shape,
                  const std::vector<float>& values);
  std::string i64(const std::string& name, const std::vector<int64_t>& shape,
                  const std::vector<int64_t>& values);
  // A constant with a name derived from the node that reads it ("<scope>/<what>").
  std::string i64_const(const std::string& scope, const std::string& what,
                        const std::vector<int64_t>& values, bool scalar = false);
  std::string f32_scalar(const std::string& scope, const std::string& what, float value);

  void input(const std::string& name, int32_t elem_type, const std::vector<int64_t>& shape);
  // The initializer called `name`, or null.
  const onnx::TensorProto* initializer(const std::string& name) const;

  // Renames `value`, which no node reads, to `name` and declares it a graph output.
  void output(const std::string& value, const std::string& name, int32_t elem_type,
              const std::vector<int64_t>& shape);
  void metadata(const std::string& key, const std::string& value);

  onnx::ModelProto& model() { return model_; }

 private:
  std::string unique(const std::string& base);

  onnx::TensorProto* add_initializer(const std::string& name);

  onnx::ModelProto model_;
  onnx::GraphProto* graph_;
  std::map<std::string, int> used_;  // node / constant base name -> times used
  std::map<std::string, int> initializers_;  // name -> index in graph_->initializer()
  NodeEvaluator* evaluator_ = nullptr;
};

}  // namespace nibble::zoo
