// Antialiased Resize reads 2 * ceil(support / scale) inputs per output value when downscaling:
// a downscale whose count exceeds the bound fails at load with a clear Unsupported error instead
// of allocating the coefficients; one just within it runs and averages the whole axis. The
// coefficients of a whole axis (an index and a weight per tap and output) stay within the
// session's allocation limit (a fuzz finding: 1 GiB plans within the per-output bound).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

// x [1, width] resized to [1, out_width] with antialias.
ModelBuilder antialias_model(int64_t width, const std::string& mode, int64_t out_width = 1) {
  ModelBuilder m(18);
  m.input("x", DType::F32, {1, width});
  m.initializer<int64_t>("sizes", DType::I64, {2}, {1, out_width});
  auto& resize = m.node("Resize", {"x", "", "", "sizes"}, {"y"}, "shrink");
  ModelBuilder::attr(resize, "antialias", int64_t{1});
  auto* mode_attr = resize.add_attribute();
  mode_attr->set_name("mode");
  mode_attr->set_type(onnx::AttributeProto::STRING);
  mode_attr->set_s(mode);
  m.output("y", DType::F32);
  return m;
}

}  // namespace

TEST_CASE("antialiased Resize bounds the inputs read per output value") {
  // Downscaling `width` values to one reads 2 * width (linear) or 4 * width (cubic) inputs per
  // output value; the bound is 65536.
  try {
    antialias_model(int64_t{1} << 16 | 1, "linear").session();
    FAIL("a huge antialiased downscale loaded");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(e.kind() == ErrorKind::Unsupported);
    CHECK(message.find("Resize node 'shrink'") != std::string::npos);
    CHECK(message.find("inputs per output value, more than the 65536 supported") !=
          std::string::npos);
  }
  CHECK_THROWS_AS(antialias_model(int64_t{1} << 15 | 1, "cubic").session(), Error);

  // Within the bound: the triangle filter averages the axis around its centre.
  const int64_t width = int64_t{1} << 15;
  const Session s = antialias_model(width, "linear").session();
  Tensor x(DType::F32, {1, width});
  for (int64_t i = 0; i < width; ++i) x.data<float>()[i] = 1.0f;
  const Tensor y = s.run({{"x", x}}).at(0);
  CHECK(std::abs(y.data<float>()[0] - 1.0f) < 1e-5f);
}

TEST_CASE("antialiased Resize keeps an axis's interpolation weights within the allocation limit") {
  // 2^20 -> 1024 values: 2048 taps per output (within the per-output bound), 1024 * 2048 * 16 =
  // 32 MiB of weights; the input itself is 4 MiB.
  SessionOptions options;
  options.max_tensor_bytes = size_t{16} << 20;
  try {
    antialias_model(int64_t{1} << 20, "linear", 1024).session(options);
    FAIL("an axis plan over the allocation limit loaded");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(e.kind() == ErrorKind::InvalidModel);
    CHECK(message.find("Resize node 'shrink'") != std::string::npos);
    CHECK(message.find("interpolation weights of axis 1 (1048576 -> 1024) need 33554432 bytes, "
                       "over the allocation limit of 16777216 bytes") != std::string::npos);
  }
  options.max_tensor_bytes = size_t{64} << 20;
  CHECK_NOTHROW(antialias_model(int64_t{1} << 20, "linear", 1024).session(options));
}
