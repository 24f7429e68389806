// Transpose, Concat, Split, Slice, Tile, Expand and Pad against naive per-element references,
// over shapes around the copy tiles, every element size, and one and two threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>

#include "tests/engine/test_tensor_ops_util.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

const DType kElementSizes[] = {DType::U8, DType::F16, DType::F32, DType::I64};

Tensor run_transpose(const Tensor& x, const std::vector<int64_t>& perm, int num_threads) {
  ModelBuilder m(13);
  m.input("x", x.dtype(), x.shape());
  ModelBuilder::attr(m.node("Transpose", {"x"}, {"y"}), "perm", perm);
  m.output("y", x.dtype());
  return m.session(threads(num_threads)).run({{"x", x}}).at(0);
}

Tensor reference_transpose(const Tensor& x, const std::vector<int64_t>& perm) {
  Shape out_shape;
  for (int64_t p : perm) out_shape.push_back(x.shape()[size_t(p)]);
  Tensor y(x.dtype(), out_shape);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const std::vector<int64_t> oc = coords_of(i, out_shape);
    std::vector<int64_t> ic(perm.size());
    for (size_t d = 0; d < perm.size(); ++d) ic[size_t(perm[d])] = oc[d];
    copy_element(y, i, x, flat_index(ic, x.shape()));
  }
  return y;
}

}  // namespace

TEST_CASE("Transpose matches the naive reference around the tile size") {
  for (DType dtype : kElementSizes) {
    for (int64_t rows : {1, 3, 16, 17, 40}) {
      for (int64_t cols : {1, 15, 16, 33}) {
        const Tensor x = patterned(dtype, {2, rows, cols});
        for (int num_threads : {1, 2}) {
          CAPTURE(dtype_name(dtype));
          CAPTURE(rows);
          CAPTURE(cols);
          CHECK(same_bytes(run_transpose(x, {0, 2, 1}, num_threads),
                           reference_transpose(x, {0, 2, 1})));
        }
      }
    }
  }
}

TEST_CASE("Transpose handles every 4-D permutation and YOLO-sized heads") {
  std::vector<int64_t> perm = {0, 1, 2, 3};
  const Tensor x = patterned(DType::F32, {3, 5, 1, 18});
  do {
    CAPTURE(perm[0]);
    CAPTURE(perm[1]);
    CAPTURE(perm[2]);
    CHECK(same_bytes(run_transpose(x, perm, 2), reference_transpose(x, perm)));
  } while (std::next_permutation(perm.begin(), perm.end()));

  const Tensor head = patterned(DType::F32, {1, 84, 8400});
  CHECK(same_bytes(run_transpose(head, {0, 2, 1}, 2), reference_transpose(head, {0, 2, 1})));
}

TEST_CASE("Concat and Split are inverse on every axis") {
  for (DType dtype : kElementSizes) {
    for (int64_t axis : {0, 1, 2}) {
      Shape a_shape = {2, 3, 4}, b_shape = {2, 3, 4};
      b_shape[size_t(axis)] = 5;
      const Tensor a = patterned(dtype, a_shape), b = patterned(dtype, b_shape);
      ModelBuilder m(13);
      m.input("a", dtype, a_shape);
      m.input("b", dtype, b_shape);
      ModelBuilder::attr(m.node("Concat", {"a", "b"}, {"ab"}), "axis", axis);
      m.initializer("sizes", int64s({2}, {a_shape[size_t(axis)], 5}));
      ModelBuilder::attr(m.node("Split", {"ab", "sizes"}, {"a2", "b2"}), "axis", axis);
      m.output("ab", dtype);
      m.output("a2", dtype);
      m.output("b2", dtype);
      const std::vector<Tensor> out = m.session(threads(2)).run({{"a", a}, {"b", b}});
      CAPTURE(axis);
      // Concat output element by element: input a fills the first a_shape[axis] slots of axis.
      for (int64_t i = 0; i < out[0].numel(); ++i) {
        std::vector<int64_t> c = coords_of(i, out[0].shape());
        const bool from_a = c[size_t(axis)] < a_shape[size_t(axis)];
        if (!from_a) c[size_t(axis)] -= a_shape[size_t(axis)];
        Tensor expected_element(dtype, {});
        copy_element(expected_element, 0, from_a ? a : b,
                     flat_index(c, from_a ? a_shape : b_shape));
        Tensor actual_element(dtype, {});
        copy_element(actual_element, 0, out[0], i);
        REQUIRE(same_bytes(actual_element, expected_element));
      }
      CHECK(same_bytes(out[1], a));
      CHECK(same_bytes(out[2], b));
    }
  }
}

TEST_CASE("Slice clamps starts and ends and walks negative steps") {
  struct SliceCase {
    int64_t start, end, step;
  };
  const int64_t kMax = std::numeric_limits<int64_t>::max(),
                kMin = std::numeric_limits<int64_t>::min();
  const SliceCase cases[] = {{0, kMax, 1}, {-3, -1, 1}, {kMax, kMin, -1}, {-1, kMin, -2},
                             {2, 100, 3},  {5, 2, 1},   {1, kMax, kMax},  {7, -100, kMin},
                             {-100, 4, 1}, {3, 3, -1}};
  const Tensor x = patterned(DType::F32, {4, 9});
  for (const SliceCase& s : cases) {
    ModelBuilder m(13);
    m.input("x", DType::F32, {4, 9});
    m.initializer("starts", int64s({1}, {s.start}));
    m.initializer("ends", int64s({1}, {s.end}));
    m.initializer("axes", int64s({1}, {1}));
    m.initializer("steps", int64s({1}, {s.step}));
    m.node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"});
    m.output("y", DType::F32);
    const Tensor y = m.session().run({{"x", x}}).at(0);

    // Python slicing semantics on a dimension of 9.
    std::vector<int64_t> picked;
    const int64_t dim = 9;
    int64_t start = s.start < 0 ? std::max<int64_t>(s.start + dim, s.step > 0 ? 0 : -1) : s.start;
    int64_t end = s.end < 0 ? std::max<int64_t>(s.end + dim, s.step > 0 ? 0 : -1) : s.end;
    start = std::min(start, s.step > 0 ? dim : dim - 1);
    end = std::min(end, s.step > 0 ? dim : dim - 1);
    for (int64_t j = start; s.step > 0 ? j < end : j > end; j += s.step) {
      picked.push_back(j);
      if ((s.step > 0 && j > kMax - s.step) || (s.step < 0 && j < kMin - s.step)) break;
    }
    CAPTURE(s.start);
    CAPTURE(s.end);
    CAPTURE(s.step);
    REQUIRE(y.shape() == Shape{4, int64_t(picked.size())});
    for (int64_t r = 0; r < 4; ++r)
      for (size_t j = 0; j < picked.size(); ++j)
        CHECK(y.data<float>()[r * int64_t(picked.size()) + int64_t(j)] ==
              x.data<float>()[r * 9 + picked[j]]);
  }
}

TEST_CASE("Tile and Expand repeat the input") {
  const Tensor x = patterned(DType::F16, {2, 1, 3});
  ModelBuilder m(13);
  m.input("x", DType::F16, {2, 1, 3});
  m.initializer("repeats", int64s({3}, {2, 3, 2}));
  m.initializer("shape", int64s({4}, {2, 1, 4, 3}));
  m.node("Tile", {"x", "repeats"}, {"tiled"});
  m.node("Expand", {"x", "shape"}, {"expanded"});
  m.output("tiled", DType::F16);
  m.output("expanded", DType::F16);
  const std::vector<Tensor> out = m.session(threads(2)).run({{"x", x}});
  REQUIRE(out[0].shape() == Shape{4, 3, 6});
  for (int64_t i = 0; i < out[0].numel(); ++i) {
    std::vector<int64_t> c = coords_of(i, out[0].shape());
    for (size_t d = 0; d < c.size(); ++d) c[d] %= x.shape()[d];
    CHECK(out[0].data<uint16_t>()[i] == x.data<uint16_t>()[flat_index(c, x.shape())]);
  }
  REQUIRE(out[1].shape() == Shape{2, 2, 4, 3});
  for (int64_t i = 0; i < out[1].numel(); ++i) {
    const std::vector<int64_t> c = coords_of(i, out[1].shape());
    CHECK(out[1].data<uint16_t>()[i] == x.data<uint16_t>()[flat_index({c[1], 0, c[3]}, x.shape())]);
  }
}

TEST_CASE("Pad fills, reflects, repeats edges, wraps and crops") {
  const Shape shape = {3, 4};
  const std::vector<int64_t> pads = {2, -1, 3, 5};  // begin rows/cols, end rows/cols
  const Tensor x = patterned(DType::I64, shape);
  auto source = [](const std::string& mode, int64_t c, int64_t dim) -> int64_t {
    if (c >= 0 && c < dim) return c;
    if (mode == "constant") return -1;
    if (mode == "edge") return c < 0 ? 0 : dim - 1;
    if (mode == "wrap") return ((c % dim) + dim) % dim;
    const int64_t period = 2 * (dim - 1);
    const int64_t r = ((c % period) + period) % period;
    return r < dim ? r : period - r;
  };
  for (const std::string mode : {"constant", "reflect", "edge", "wrap"}) {
    ModelBuilder m(19);
    m.input("x", DType::I64, shape);
    m.initializer("pads", int64s({4}, pads));
    m.initializer("value", int64s({}, {-9}));
    string_attr(m.node("Pad", {"x", "pads", "value"}, {"y"}), "mode", mode);
    m.output("y", DType::I64);
    const Tensor y = m.session().run({{"x", x}}).at(0);
    CAPTURE(mode);
    REQUIRE(y.shape() == Shape{3 + 2 + 3, 4 - 1 + 5});
    for (int64_t i = 0; i < y.numel(); ++i) {
      const std::vector<int64_t> c = coords_of(i, y.shape());
      const int64_t r = source(mode, c[0] - pads[0], 3), col = source(mode, c[1] - pads[1], 4);
      const int64_t expected = r < 0 || col < 0 ? -9 : x.data<int64_t>()[r * 4 + col];
      CHECK(y.data<int64_t>()[i] == expected);
    }
  }
}

TEST_CASE("DepthToSpace and SpaceToDepth are inverse") {
  const Tensor x = patterned(DType::U8, {2, 3, 6, 4});
  ModelBuilder m(13);
  m.input("x", DType::U8, x.shape());
  ModelBuilder::attr(m.node("SpaceToDepth", {"x"}, {"deep"}), "blocksize", int64_t{2});
  ModelBuilder::attr(m.node("DepthToSpace", {"deep"}, {"y"}), "blocksize", int64_t{2});
  m.output("deep", DType::U8);
  m.output("y", DType::U8);
  const std::vector<Tensor> out = m.session().run({{"x", x}});
  CHECK(out[0].shape() == Shape{2, 12, 3, 2});
  CHECK(same_bytes(out[1], x));
}
