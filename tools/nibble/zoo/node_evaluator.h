// Runs a graph node by node in nibble while it is being written, keeping every value, so that a
// model builder can measure real activations before it chooses the next layer's weights.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "nibble/tensor.h"
#include "nibble_onnx/onnx.pb.h"

namespace nibble::zoo {

class NodeEvaluator {
 public:
  using InitializerLookup = std::function<const onnx::TensorProto*(const std::string&)>;

  explicit NodeEvaluator(int64_t opset) : opset_(opset) {}

  void set(const std::string& name, Tensor value) { values_[name] = std::move(value); }
  // Throws Error(Internal) for a value never set or computed.
  Tensor& get(const std::string& name);

  // Runs `node` on the values computed so far; inputs that are not values are looked up as
  // initializers. Stores the node's outputs.
  void run(const onnx::NodeProto& node, const InitializerLookup& initializer);

 private:
  int64_t opset_;
  std::map<std::string, Tensor> values_;
};

}  // namespace nibble::zoo
