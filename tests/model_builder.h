// Builds small ONNX models in tests (error cases, single-op graphs, QDQ patterns).
//
//   ModelBuilder m(17);
//   m.input("x", DType::F32, {1, 3});
//   m.initializer("w", Tensor(...));
//   m.node("Add", {"x", "w"}, {"y"});
//   m.output("y", DType::F32);
//   nibble::Session s = m.session();
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "nibble_onnx/onnx.pb.h"

namespace nibble::testing {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 17, int64_t ir_version = 8) {
    model_.set_ir_version(ir_version);
    auto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    model_.mutable_graph()->set_name("test");
  }

  onnx::ModelProto& proto() { return model_; }
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }

  void input(const std::string& name, DType dtype, const Shape& shape) {
    set_value_info(graph().add_input(), name, dtype, shape);
  }
  void output(const std::string& name, DType dtype, const Shape& shape = {}) {
    set_value_info(graph().add_output(), name, dtype, shape);
  }
  void initializer(const std::string& name, const Tensor& t) {
    auto* p = graph().add_initializer();
    p->set_name(name);
    p->set_data_type(int32_t(t.dtype()));
    for (int64_t d : t.shape()) p->add_dims(d);
    p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
  }
  template <typename T>
  void initializer(const std::string& name, DType dtype, const Shape& shape, std::vector<T> values) {
    Tensor t(dtype, shape);
    if (t.nbytes() > 0) std::memcpy(t.raw(), values.data(), t.nbytes());  // empty: data() may be null
    initializer(name, t);
  }
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "") {
    auto* n = graph().add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + "_" + std::to_string(graph().node_size()) : name);
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return *n;
  }
  static void attr(onnx::NodeProto& n, const std::string& key, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& key, float v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& key, const std::vector<int64_t>& v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  std::string bytes() const { return model_.SerializeAsString(); }
  Session session(const SessionOptions& options = {}, const std::string& base_dir = "") const {
    std::string b = bytes();
    return Session::load_bytes(b.data(), b.size(), options, base_dir);
  }

 private:
  static void set_value_info(onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                             const Shape& shape) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(int32_t(dtype));
    auto* s = t->mutable_shape();
    for (int64_t d : shape) {
      auto* dim = s->add_dim();
      if (d >= 0) dim->set_dim_value(d);
      else dim->set_dim_param("dyn");
    }
  }

  onnx::ModelProto model_;
};

}  // namespace nibble::testing
