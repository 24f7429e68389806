// Graph inputs that also have an initializer (Brevitas lists its BN parameters so): nibble folds
// them as constants, leaves them out of Session::inputs(), and refuses a value fed for one with
// an InvalidArgument error that names it and says why, instead of ignoring the value.
#include <doctest/doctest.h>

#include <string>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

// y = x + b, with b a graph input whose initializer is {10, 20}.
ModelBuilder add_model() {
  ModelBuilder m(13);
  m.input("x", DType::F32, {2});
  m.input("b", DType::F32, {2});
  m.initializer<float>("b", DType::F32, {2}, {10.0f, 20.0f});
  m.node("Add", {"x", "b"}, {"y"});
  m.output("y", DType::F32);
  return m;
}

Tensor floats(const std::vector<float>& values) {
  Tensor t(DType::F32, {int64_t(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t.data<float>()[i] = values[i];
  return t;
}

}  // namespace

TEST_CASE("a graph input with an initializer is a constant: not an input, refused at run time") {
  const Session s = add_model().session();
  REQUIRE(s.inputs().size() == 1);
  CHECK(s.inputs()[0].name == "x");
  const Tensor y = s.run({{"x", floats({1.0f, 2.0f})}}).at(0);
  CHECK(y.data<float>()[0] == 11.0f);
  CHECK(y.data<float>()[1] == 22.0f);

  try {
    s.run({{"x", floats({1.0f, 2.0f})}, {"b", floats({0.0f, 0.0f})}});
    FAIL("feeding a constant input was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::InvalidArgument);
    const std::string message = e.what();
    CHECK(message.find("'b'") != std::string::npos);
    CHECK(message.find("initializer") != std::string::npos);
    CHECK(message.find("constant") != std::string::npos);
  }

  SessionOptions options;
  options.input_shapes["b"] = {2};
  try {
    add_model().session(options);
    FAIL("input_shapes naming a constant input was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::InvalidArgument);
    CHECK(std::string(e.what()).find("'b' is a constant") != std::string::npos);
  }

  // A name that is nothing in the model keeps the plain message.
  try {
    s.run({{"x", floats({1.0f, 2.0f})}, {"z", floats({0.0f, 0.0f})}});
    FAIL("an unknown input was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::InvalidArgument);
    CHECK(std::string(e.what()).find("no input named 'z'") != std::string::npos);
  }
}
