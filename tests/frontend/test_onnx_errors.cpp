// Bad input must give a clear nibble::Error naming the problem — never a crash or a hang.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "frontend/onnx/onnx_loader.h"
#include "nibble/nibble.h"
#include "tests/asset_paths.h"
#include "tests/model_builder.h"

using namespace nibble;
using nibble::testing::ModelBuilder;
namespace fs = std::filesystem;

namespace {

// Runs `fn`, expecting an Error of `kind` whose message contains `needle`.
template <typename F>
void expect_error(F&& fn, ErrorKind kind, const std::string& needle) {
  try {
    fn();
    FAIL("expected an error containing '" << needle << "'");
  } catch (const Error& e) {
    CHECK_MESSAGE(e.kind() == kind, "message: " << e.what());
    CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos,
                  "'" << std::string(e.what()) << "' lacks '" << needle << "'");
  }
}

ModelBuilder relu_model() {
  ModelBuilder m(17);
  m.input("x", DType::F32, {1, 4});
  m.node("Relu", {"x"}, {"y"}, "relu0");
  m.output("y", DType::F32);
  return m;
}

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("nibble_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("missing model file names the path") {
  expect_error([] { Session::load("/nonexistent/dir/model.onnx"); }, ErrorKind::Io,
               "/nonexistent/dir/model.onnx");
}

TEST_CASE("a directory is not a model") {
  expect_error([] { Session::load(fs::temp_directory_path().string()); }, ErrorKind::Io, "directory");
}

TEST_CASE("non-ONNX bytes are refused") {
  std::string junk = "this is a JPEG, honest \xff\xd8\xff\xe0 not a model";
  expect_error([&] { Session::load_bytes(junk.data(), junk.size()); }, ErrorKind::InvalidModel,
               "not an ONNX model");
  expect_error([&] { Session::load_bytes(junk.data(), 0); }, ErrorKind::InvalidModel, "empty");
}

TEST_CASE("truncated protobuf is refused at every cut") {
  std::string bytes = relu_model().bytes();
  for (size_t cut = 1; cut < bytes.size(); cut += 3) {
    try {
      Session::load_bytes(bytes.data(), cut);
    } catch (const Error& e) {
      CHECK(e.kind() != ErrorKind::Internal);
    }
  }
  std::string path = nibble::testing::asset("models/yolov10n-640-fp32.onnx");
  if (path.empty()) return;
  std::string model = onnx_frontend::read_file(path);
  expect_error([&] { Session::load_bytes(model.data(), model.size() / 2); },
               ErrorKind::InvalidModel, "protobuf parsing failed");
}

TEST_CASE("unsupported operator names the op and the node") {
  ModelBuilder m(17);
  m.input("x", DType::F32, {2});
  m.node("FrobnicateTensor", {"x"}, {"y"}, "my_node");
  m.output("y", DType::F32);
  expect_error([&] { m.session(); }, ErrorKind::Unsupported, "FrobnicateTensor");
  expect_error([&] { m.session(); }, ErrorKind::Unsupported, "my_node");
}

TEST_CASE("unsupported dtype is named") {
  ModelBuilder m(17);
  m.input("x", DType::BF16, {2});
  m.node("Relu", {"x"}, {"y"});
  m.output("y", DType::BF16);
  expect_error([&] { m.session(); }, ErrorKind::Unsupported, "BFLOAT16");
}

TEST_CASE("wrong input shape, dtype or name") {
  Session s = relu_model().session();
  Tensor good(DType::F32, {1, 4});
  CHECK(s.run({{"x", good}}).at(0).shape() == Shape{1, 4});
  expect_error([&] { s.run({{"x", Tensor(DType::F32, {1, 5})}}); }, ErrorKind::InvalidArgument,
               "must have shape [1,4], got [1,5]");
  expect_error([&] { s.run({{"x", Tensor(DType::F32, {4})}}); }, ErrorKind::InvalidArgument, "shape");
  expect_error([&] { s.run({{"x", Tensor(DType::I64, {1, 4})}}); }, ErrorKind::InvalidArgument,
               "must be float, got int64");
  expect_error([&] { s.run({{"z", good}}); }, ErrorKind::InvalidArgument, "no input named 'z'");
  expect_error([&] { s.run({}); }, ErrorKind::InvalidArgument, "missing input 'x'");
  expect_error([&] { s.run({{"x", good}}, {"nope"}); }, ErrorKind::InvalidArgument, "no output named 'nope'");
}

TEST_CASE("dangling input, duplicate names and cycles") {
  {
    ModelBuilder m(17);
    m.input("x", DType::F32, {2});
    m.node("Add", {"x", "ghost"}, {"y"}, "adder");
    m.output("y", DType::F32);
    expect_error([&] { m.session(); }, ErrorKind::InvalidModel, "'ghost'");
  }
  {
    ModelBuilder m(17);
    m.input("x", DType::F32, {2});
    m.node("Relu", {"x"}, {"y"});
    m.node("Relu", {"x"}, {"y"});
    m.output("y", DType::F32);
    expect_error([&] { m.session(); }, ErrorKind::InvalidModel, "defined twice");
  }
  {
    ModelBuilder m(17);
    m.input("x", DType::F32, {2});
    m.node("Add", {"x", "b"}, {"a"}, "first");
    m.node("Relu", {"a"}, {"b"}, "second");
    m.output("b", DType::F32);
    expect_error([&] { m.session(); }, ErrorKind::InvalidModel, "cycle");
  }
  {
    ModelBuilder m(17);
    m.input("x", DType::F32, {2});
    m.node("Relu", {"x"}, {"y"});
    m.output("never_made", DType::F32);
    expect_error([&] { m.session(); }, ErrorKind::InvalidModel, "never_made");
  }
}

TEST_CASE("initializer with the wrong byte count") {
  ModelBuilder m(17);
  m.input("x", DType::F32, {2});
  auto* init = m.graph().add_initializer();
  init->set_name("w");
  init->set_data_type(int32_t(DType::F32));
  init->add_dims(2);
  init->set_raw_data(std::string(7, '\0'));
  m.node("Add", {"x", "w"}, {"y"});
  m.output("y", DType::F32);
  expect_error([&] { m.session(); }, ErrorKind::InvalidModel, "raw data holds 7 bytes, expected 8");
}

TEST_CASE("external data is resolved inside the model directory only") {
  fs::path dir = temp_dir("external");
  {
    std::ofstream(dir / "weights.bin", std::ios::binary).write("\0\0\x80\x3f\0\0\0\x40", 8);  // 1.0f, 2.0f
  }
  auto model_with = [&](const std::string& location, const std::string& offset) {
    ModelBuilder m(17);
    m.input("x", DType::F32, {2});
    auto* init = m.graph().add_initializer();
    init->set_name("w");
    init->set_data_type(int32_t(DType::F32));
    init->add_dims(2);
    init->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* loc = init->add_external_data();
    loc->set_key("location");
    loc->set_value(location);
    auto* off = init->add_external_data();
    off->set_key("offset");
    off->set_value(offset);
    m.node("Add", {"x", "w"}, {"y"});
    m.output("y", DType::F32);
    return m;
  };
  auto write = [&](const ModelBuilder& m) {
    std::ofstream(dir / "model.onnx", std::ios::binary) << m.bytes();
    return (dir / "model.onnx").string();
  };
  Session ok = Session::load(write(model_with("weights.bin", "0")));
  Tensor x(DType::F32, {2});
  Tensor y = ok.run({{"x", x}}).at(0);
  CHECK(y.data<float>()[0] == 1.0f);
  CHECK(y.data<float>()[1] == 2.0f);

  expect_error([&] { Session::load(write(model_with("../outside.bin", "0"))); }, ErrorKind::InvalidModel,
               "escapes the model directory");
  expect_error([&] { Session::load(write(model_with("/etc/passwd", "0"))); }, ErrorKind::InvalidModel,
               "absolute");
  expect_error([&] { Session::load(write(model_with("weights.bin", "4"))); }, ErrorKind::InvalidModel,
               "holds 4 bytes, expected 8");
  expect_error([&] { Session::load(write(model_with("weights.bin", "9"))); }, ErrorKind::InvalidModel,
               "lies outside");
  expect_error([&] { Session::load(write(model_with("missing.bin", "0"))); }, ErrorKind::Io, "missing.bin");
  std::string bytes = model_with("weights.bin", "0").bytes();
  expect_error([&] { Session::load_bytes(bytes.data(), bytes.size()); }, ErrorKind::InvalidModel,
               "without a base directory");
  fs::remove_all(dir);
}

TEST_CASE("unsupported IR version and missing opset") {
  ModelBuilder m(17, 99);
  m.input("x", DType::F32, {2});
  m.node("Relu", {"x"}, {"y"});
  m.output("y", DType::F32);
  expect_error([&] { m.session(); }, ErrorKind::Unsupported, "IR version 99");
}

TEST_CASE("huge declared shapes are refused before allocation") {
  ModelBuilder m(17);
  m.input("x", DType::F32, {int64_t{1} << 20, int64_t{1} << 20});
  m.node("Relu", {"x"}, {"y"});
  m.output("y", DType::F32);
  SessionOptions options;
  options.max_tensor_bytes = size_t{1} << 30;
  expect_error([&] { m.session(options); }, ErrorKind::InvalidModel, "allocation limit");
}
