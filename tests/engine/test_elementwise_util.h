// Helpers for the elementwise and reduction op tests: one-node models fed at run time, typed
// tensor construction and tolerance checks.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

namespace nibble::testing {

// A tensor of `dtype` holding `values` (converted; float16 through float_to_half).
template <class V>
Tensor make_tensor(DType dtype, const Shape& shape, const std::vector<V>& values) {
  Tensor t(dtype, shape);
  REQUIRE(values.size() == size_t(t.numel()));
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = double(values[i]);
    switch (dtype) {
      case DType::F32: t.data<float>()[i] = float(v); break;
      case DType::F64: t.data<double>()[i] = v; break;
      case DType::F16: t.data<uint16_t>()[i] = float_to_half(float(v)); break;
      case DType::I64: t.data<int64_t>()[i] = int64_t(values[i]); break;
      case DType::I32: t.data<int32_t>()[i] = int32_t(values[i]); break;
      case DType::I8: t.data<int8_t>()[i] = int8_t(values[i]); break;
      case DType::U8: t.data<uint8_t>()[i] = uint8_t(values[i]); break;
      case DType::Bool: t.data<bool>()[i] = v != 0; break;
      default: FAIL("make_tensor: unhandled dtype " << dtype_name(dtype));
    }
  }
  return t;
}

// Values i * step + offset, wrapped every `period` elements so large tensors stay bounded.
inline Tensor ramp(const Shape& shape, float step = 0.25f, float offset = -1.0f,
                   int64_t period = 29) {
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i % period) * step + offset;
  return t;
}

// A single-node model: inputs fed at run time or as initializers, output "y".
class OpRunner {
 public:
  OpRunner(const std::string& op_type, int64_t opset) : model_(opset) {
    node_ = &model_.node(op_type, {}, {"y"});
  }
  OpRunner(const OpRunner&) = delete;  // node_ points into model_
  OpRunner& operator=(const OpRunner&) = delete;

  OpRunner& input(const Tensor& t) {
    const std::string name = next_name();
    model_.input(name, t.dtype(), t.shape());
    node_->add_input(name);
    feeds_.emplace_back(name, t);
    return *this;
  }
  OpRunner& constant(const Tensor& t) {
    const std::string name = next_name();
    model_.initializer(name, t);
    node_->add_input(name);
    return *this;
  }
  OpRunner& omitted() {
    node_->add_input("");
    return *this;
  }
  template <class V>
  OpRunner& attr(const std::string& key, V value) {
    if constexpr (std::is_convertible_v<V, std::string>) {
      auto* a = node_->add_attribute();
      a->set_name(key);
      a->set_type(onnx::AttributeProto::STRING);
      a->set_s(std::string(value));
    } else if constexpr (std::is_floating_point_v<V>) {
      ModelBuilder::attr(*node_, key, float(value));
    } else if constexpr (std::is_integral_v<V>) {
      ModelBuilder::attr(*node_, key, int64_t(value));
    } else {
      ModelBuilder::attr(*node_, key, std::vector<int64_t>(value));
    }
    return *this;
  }
  Tensor run(DType out_dtype, int threads = 1) {
    model_.output("y", out_dtype);
    SessionOptions options;
    options.num_threads = threads;
    return model_.session(options).run(feeds_).at(0);
  }

 private:
  std::string next_name() { return "in" + std::to_string(node_->input_size()); }

  ModelBuilder model_;
  onnx::NodeProto* node_;
  NamedTensors feeds_;
};

// Every element of `actual` within atol + rtol * |expected| (NaN matches NaN).
inline void check_values(const Tensor& actual, const std::vector<double>& expected,
                         double rtol = 1e-6, double atol = 1e-6) {
  REQUIRE(size_t(actual.numel()) == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const double a = actual.get_f64(int64_t(i)), e = expected[i];
    INFO("element " << i << ": " << a << " vs expected " << e);
    if (std::isnan(e)) CHECK(std::isnan(a));
    else if (std::isinf(e)) CHECK(a == e);
    else CHECK(std::fabs(a - e) <= atol + rtol * std::fabs(e));
  }
}

// Row-major coordinates of flat index i in `shape`.
inline std::vector<int64_t> coords(int64_t i, const Shape& shape) {
  std::vector<int64_t> c(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    c[d] = i % shape[d];
    i /= shape[d];
  }
  return c;
}

}  // namespace nibble::testing
