// Gather indices out of range: constant indices are the model's error (InvalidModel at load),
// indices fed at run time the caller's (InvalidArgument at run); both name the node.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

// data [2, 3] (a graph input, or an initializer when data_constant) gathered along axis 1 with
// `indices`, an initializer or (indices_at_run_time) a graph input of shape [2].
ModelBuilder gather_model(const std::vector<int64_t>& indices, bool data_constant,
                          bool indices_at_run_time) {
  ModelBuilder m(13);
  if (data_constant)
    m.initializer<float>("data", DType::F32, {2, 3}, {0, 1, 2, 3, 4, 5});
  else
    m.input("data", DType::F32, {2, 3});
  if (indices_at_run_time)
    m.input("indices", DType::I64, {int64_t(indices.size())});
  else
    m.initializer<int64_t>("indices", DType::I64, {int64_t(indices.size())}, indices);
  ModelBuilder::attr(m.node("Gather", {"data", "indices"}, {"y"}, "pick_columns"), "axis",
                     int64_t{1});
  m.output("y", DType::F32);
  return m;
}

void expect_error(const std::function<void()>& fn, ErrorKind kind, const std::string& needle) {
  try {
    fn();
    FAIL("no error");
  } catch (const Error& e) {
    CHECK_MESSAGE(e.kind() == kind, e.what());
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
  }
}

}  // namespace

TEST_CASE("Gather: constant indices out of range fail at load as InvalidModel naming the node") {
  for (const bool data_constant : {false, true}) {
    CAPTURE(data_constant);
    for (const int64_t bad : {int64_t{3}, int64_t{-4}, int64_t{1} << 40}) {
      CAPTURE(bad);
      expect_error([&] { gather_model({0, bad}, data_constant, false).session(); },
                   ErrorKind::InvalidModel,
                   "Gather node 'pick_columns': index " + std::to_string(bad) +
                       " is out of range for axis 1 of size 3");
    }
  }
  // In range, negative from the end.
  const Session s = gather_model({-1, 0}, true, false).session();
  const Tensor y = s.run({}).at(0);
  CHECK(y.to_i64_vector() == std::vector<int64_t>{2, 0, 5, 3});
}

TEST_CASE("Gather: indices fed at run time out of range are InvalidArgument naming the node") {
  const Session s = gather_model({0, 0}, true, true).session();
  Tensor indices(DType::I64, {2});
  indices.data<int64_t>()[0] = 1;
  indices.data<int64_t>()[1] = 7;
  expect_error([&] { s.run({{"indices", indices}}); }, ErrorKind::InvalidArgument,
               "Gather node 'pick_columns'");
}
