// nibble IR — a typed, statically shaped dataflow graph lowered from ONNX.
//
// Values are addressed by index into Graph::values. A value is produced by at most one node; a
// value with `constant` set is known at load time (initializer, Constant node or folded result).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "nibble/error.h"
#include "nibble/tensor.h"

namespace nibble {

using ValueId = int32_t;
constexpr ValueId kNoValue = -1;  // an omitted optional input

struct Attribute {
  enum class Kind { Float, Int, String, Tensor, Floats, Ints, Strings, Graph };
  Kind kind = Kind::Int;
  float f = 0;
  int64_t i = 0;
  std::string s;
  nibble::Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct Node {
  std::string op_type;
  std::string domain;  // "" for the default ONNX domain ("ai.onnx" is normalized to "")
  std::string name;    // ONNX node name, or "<op_type>_<index>" when the model gave none
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  std::map<std::string, Attribute> attrs;

  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }
  // Typed getters: throw Error(InvalidModel) naming node and attribute when the kind is wrong,
  // and when the attribute is missing and no default is given.
  int64_t attr_int(const std::string& key) const;
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  float attr_float(const std::string& key) const;
  float attr_float(const std::string& key, float fallback) const;
  std::string attr_string(const std::string& key) const;
  std::string attr_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> fallback) const;
  std::vector<float> attr_floats(const std::string& key) const;
  const Tensor& attr_tensor(const std::string& key) const;
  // "Conv 'node_name'" — used in every error message about this node.
  std::string describe() const;
};

struct Value {
  std::string name;
  DType dtype = DType::Undefined;
  std::optional<Shape> shape;        // set by shape inference; graph inputs get it at load
  std::optional<Tensor> constant;    // known at load time
  int32_t producer = -1;             // index into Graph::nodes, -1 for graph inputs / constants
};

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;           // topologically sorted after load
  std::vector<ValueId> inputs;       // runtime inputs only (initializers excluded)
  // Graph inputs that also have an initializer (Brevitas exports list its BN parameters so). ONNX
  // makes the initializer a default the caller may override; nibble folds it as a constant, and
  // refuses these names at run time.
  std::vector<std::string> constant_inputs;
  std::vector<ValueId> outputs;
  std::map<std::string, int64_t> opsets;  // domain -> version ("" = ai.onnx)
  int64_t ir_version = 0;

  ValueId add_value(std::string name, DType dtype = DType::Undefined);
  ValueId find_value(const std::string& name) const;  // kNoValue if absent
  int64_t opset(const std::string& domain = "") const;  // 0 if not imported
};

}  // namespace nibble
