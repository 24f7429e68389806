// Index validation (out-of-range indices raise InvalidArgument, never read out of bounds),
// TopK ordering, shapes that depend on data, and the shape-only ops.
#include <doctest/doctest.h>

#include <functional>

#include "tests/engine/test_tensor_ops_util.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

ErrorKind error_kind(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.kind();
  }
  FAIL("no error was thrown");
  return ErrorKind::Internal;
}

// data [3, 4] float, indices int64 of `indices_shape` fed at run time; op(data, indices) -> y.
Session indexing_session(const std::string& op, const Shape& indices_shape, int64_t axis) {
  ModelBuilder m(18);
  m.input("data", DType::F32, {3, 4});
  m.input("indices", DType::I64, indices_shape);
  ModelBuilder::attr(m.node(op, {"data", "indices"}, {"y"}), "axis", axis);
  m.output("y", DType::F32);
  return m.session();
}

}  // namespace

TEST_CASE("Gather reads negative indices from the end and rejects out-of-range ones") {
  const Tensor data = floats({3, 4}, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23});
  Session gather = indexing_session("Gather", {2}, 1);
  const Tensor y = gather.run({{"data", data}, {"indices", int64s({2}, {-1, 1})}}).at(0);
  REQUIRE(y.shape() == Shape{3, 2});
  CHECK(y.data<float>()[0] == 3);
  CHECK(y.data<float>()[5] == 21);
  CHECK(error_kind([&] {
          gather.run({{"data", data}, {"indices", int64s({2}, {0, 4})}});
        }) == ErrorKind::InvalidArgument);
  CHECK(error_kind([&] {
          gather.run({{"data", data}, {"indices", int64s({2}, {-5, 0})}});
        }) == ErrorKind::InvalidArgument);
}

TEST_CASE("out-of-range indices of GatherElements, ScatterElements, GatherND, ScatterND throw") {
  const Tensor data = patterned(DType::F32, {3, 4});
  Session gather_elements = indexing_session("GatherElements", {3, 2}, 0);
  CHECK(error_kind([&] {
          gather_elements.run({{"data", data}, {"indices", int64s({3, 2}, {0, 1, 2, 3, 1, 0})}});
        }) == ErrorKind::InvalidArgument);
  const Tensor picked =
      gather_elements.run({{"data", data}, {"indices", int64s({3, 2}, {0, 1, 2, -1, 1, 0})}}).at(0);
  CHECK(picked.data<float>()[3] == data.data<float>()[2 * 4 + 1]);

  ModelBuilder scatter(18);
  scatter.input("data", DType::F32, {3, 4});
  scatter.input("indices", DType::I64, {1, 2});
  scatter.input("updates", DType::F32, {1, 2});
  ModelBuilder::attr(scatter.node("ScatterElements", {"data", "indices", "updates"}, {"y"}), "axis",
                     int64_t{1});
  scatter.output("y", DType::F32);
  CHECK(error_kind([&] {
          scatter.session().run({{"data", data},
                                 {"indices", int64s({1, 2}, {1, 9})},
                                 {"updates", floats({1, 2}, {5, 6})}});
        }) == ErrorKind::InvalidArgument);

  ModelBuilder nd(18);
  nd.input("data", DType::F32, {3, 4});
  nd.input("indices", DType::I64, {2, 2});
  nd.input("updates", DType::F32, {2});
  nd.node("GatherND", {"data", "indices"}, {"gathered"});
  nd.node("ScatterND", {"data", "indices", "updates"}, {"scattered"});
  nd.output("gathered", DType::F32);
  nd.output("scattered", DType::F32);
  Session nd_session = nd.session();
  const std::vector<Tensor> ok = nd_session.run({{"data", data},
                                                 {"indices", int64s({2, 2}, {2, 3, -3, -4})},
                                                 {"updates", floats({2}, {-1, -2})}});
  CHECK(ok[0].data<float>()[0] == data.data<float>()[11]);
  CHECK(ok[0].data<float>()[1] == data.data<float>()[0]);
  CHECK(ok[1].data<float>()[11] == -1);
  CHECK(ok[1].data<float>()[0] == -2);
  CHECK(error_kind([&] {
          nd_session.run({{"data", data},
                          {"indices", int64s({2, 2}, {3, 0, 0, 0})},
                          {"updates", floats({2}, {1, 2})}});
        }) == ErrorKind::InvalidArgument);
}

TEST_CASE("TopK returns ties in ascending index order for largest and smallest") {
  for (int64_t largest : {0, 1}) {
    ModelBuilder m(11);
    m.input("x", DType::F32, {2, 6});
    m.initializer("k", int64s({1}, {4}));
    ModelBuilder::attr(m.node("TopK", {"x", "k"}, {"values", "indices"}), "largest", largest);
    m.output("values", DType::F32);
    m.output("indices", DType::I64);
    const std::vector<Tensor> out =
        m.session(threads(2)).run({{"x", floats({2, 6}, {3, 1, 3, 2, 1, 3, 5, 5, 5, 5, 5, 5})}});
    const std::vector<int64_t> expected = largest ? std::vector<int64_t>{0, 2, 5, 3, 0, 1, 2, 3}
                                                  : std::vector<int64_t>{1, 4, 3, 0, 0, 1, 2, 3};
    CAPTURE(largest);
    CHECK(out[1].to_i64_vector() == expected);
  }
}

TEST_CASE("shapes that depend on large run-time data are refused as unsupported") {
  // Small shape-like inputs are planned per value (see Session); a tensor the size of a
  // detection head cannot be.
  ModelBuilder nonzero(13);
  nonzero.input("scores", DType::F32, {1, 8400});
  nonzero.node("NonZero", {"scores"}, {"y"});
  nonzero.output("y", DType::I64);
  CHECK(error_kind([&] { nonzero.session(); }) == ErrorKind::Unsupported);

  ModelBuilder compress(13);
  compress.input("x", DType::F32, {8400, 4});
  compress.input("keep", DType::Bool, {8400});
  ModelBuilder::attr(compress.node("Compress", {"x", "keep"}, {"y"}), "axis", int64_t{0});
  compress.output("y", DType::F32);
  CHECK(error_kind([&] { compress.session(); }) == ErrorKind::Unsupported);
}

TEST_CASE("Shape of a run-time input folds into a constant that drives a Reshape") {
  // x [2, 3, 4] -> Reshape(x, Concat(Shape(x)[0:1], [-1])) = [2, 12], as exporters write it.
  ModelBuilder m(17);
  m.input("x", DType::F32, {2, 3, 4});
  auto& shape = m.node("Shape", {"x"}, {"dims"});
  ModelBuilder::attr(shape, "end", int64_t{1});
  m.initializer("minus_one", int64s({1}, {-1}));
  ModelBuilder::attr(m.node("Concat", {"dims", "minus_one"}, {"target"}), "axis", int64_t{0});
  m.node("Reshape", {"x", "target"}, {"y"});
  m.node("Size", {"x"}, {"count"});
  m.output("y", DType::F32);
  m.output("count", DType::I64);
  const Tensor x = patterned(DType::F32, {2, 3, 4});
  const std::vector<Tensor> out = m.session().run({{"x", x}});
  CHECK(out[0].shape() == Shape{2, 12});
  CHECK(same_bytes(out[0].reshaped({2, 3, 4}), x));
  CHECK(out[1].get_i64(0) == 24);
}

TEST_CASE("dimensions that overflow int64 are rejected as invalid models") {
  ModelBuilder m(13);
  m.input("x", DType::F32, {8});
  m.initializer("repeats", int64s({1}, {int64_t{1} << 62}));
  m.node("Tile", {"x", "repeats"}, {"y"});
  m.output("y", DType::F32);
  CHECK(error_kind([&] { m.session(); }) == ErrorKind::InvalidModel);
}
