// One loaded Session run from many threads at once gives exactly the serial results, for float,
// QDQ integer and ConvInteger models, for static and dynamic shapes (plans built concurrently),
// and sessions may be loaded in parallel. Built into nibble_reliability_tests, which CI also runs
// under ThreadSanitizer (a data race fails it even when the results happen to match).
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "tests/engine/test_determinism_models.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

constexpr int kThreads = 8;
constexpr int kRepeats = 6;

// Runs `inputs[i]` on thread i (kRepeats times each) and checks every result against a serial
// run of the same input.
void check_concurrent_runs(const Session& session, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> serial;
  for (const Tensor& x : inputs) serial.push_back(session.run({{"x", x}}).at(0));
  std::vector<std::vector<Tensor>> got(inputs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int rep = 0; rep < kRepeats; ++rep) got[i].push_back(session.run({{"x", inputs[i]}}).at(0));
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (const Tensor& y : got[i]) CHECK(bit_identical(y, serial[i]));
  }
}

std::vector<Tensor> distinct_inputs(DType dtype, const Shape& shape) {
  std::vector<Tensor> inputs;
  for (int i = 0; i < kThreads; ++i) inputs.push_back(random_tensor(dtype, shape, 100 + uint32_t(i)));
  return inputs;
}

SessionOptions two_threads() {
  SessionOptions o;
  o.num_threads = 2;  // the session's pool is shared by all callers
  return o;
}

}  // namespace

TEST_CASE("concurrency: a float conv net run from 8 threads gives the serial results") {
  check_concurrent_runs(float_conv_model().session(two_threads()),
                        distinct_inputs(DType::F32, {1, kDetC, kDetH, kDetW}));
}

TEST_CASE("concurrency: the W8A8 and W4A8 integer paths run from 8 threads give the serial results") {
  for (int bits : {8, 4}) {
    CAPTURE(bits);
    const ModelBuilder m = bits == 8 ? qdq_conv_model(-127, 127) : qdq_conv_model(-8, 7);
    const Session session = m.session(two_threads());
    REQUIRE(session.describe().find("nibble.QConv") != std::string::npos);
    check_concurrent_runs(session, distinct_inputs(DType::F32, {1, kDetC, kDetH, kDetW}));
  }
}

TEST_CASE("concurrency: ConvInteger run from 8 threads gives the serial results") {
  check_concurrent_runs(conv_integer_model().session(two_threads()),
                        distinct_inputs(DType::U8, {1, kDetC, kDetH, kDetW}));
}

TEST_CASE("concurrency: a dynamic-shape model plans new shapes from 8 threads at once") {
  // Every thread brings its own input size, so plans are built and cached concurrently.
  ModelBuilder m = float_conv_model();
  auto* dims = m.graph().mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
  dims->mutable_dim(2)->set_dim_param("height");
  dims->mutable_dim(3)->set_dim_param("width");
  m.graph().mutable_output(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  const std::string bytes = m.bytes();

  std::vector<Tensor> inputs;
  for (int i = 0; i < kThreads; ++i) {
    inputs.push_back(random_tensor(DType::F32, {1, kDetC, 5 + i, 9 - i % 3}, 200 + uint32_t(i)));
  }
  std::vector<Tensor> serial;
  {
    const Session reference = Session::load_bytes(bytes.data(), bytes.size(), two_threads());
    for (const Tensor& x : inputs) serial.push_back(reference.run({{"x", x}}).at(0));
  }
  const Session session = Session::load_bytes(bytes.data(), bytes.size(), two_threads());
  std::vector<Tensor> got(inputs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    threads.emplace_back([&, i] { got[i] = session.run({{"x", inputs[i]}}).at(0); });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < inputs.size(); ++i) CHECK(bit_identical(got[i], serial[i]));
}

TEST_CASE("concurrency: sessions load and run in 8 threads at once") {
  const std::string bytes = qdq_conv_model(-127, 127).bytes();
  const Tensor x = random_tensor(DType::F32, {1, kDetC, kDetH, kDetW}, 300);
  const Tensor serial = Session::load_bytes(bytes.data(), bytes.size(), two_threads()).run({{"x", x}}).at(0);
  std::vector<Tensor> got(kThreads);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      got[i] = Session::load_bytes(bytes.data(), bytes.size(), two_threads()).run({{"x", x}}).at(0);
    });
  }
  for (auto& t : threads) t.join();
  for (const Tensor& y : got) CHECK(bit_identical(y, serial));
}
