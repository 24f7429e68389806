// A model loaded from a file that fails to load names the file as well as the node at fault, and
// an unsupported operator fails at load even when planning waits for dynamic input shapes.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "nibble/nibble.h"
#include "tests/model_builder.h"

using namespace nibble;
using nibble::testing::ModelBuilder;
namespace fs = std::filesystem;

namespace {

// x [dim] -> FrobnicateTensor (no such operator) -> y, written to a temporary file.
struct UnknownOpModel {
  fs::path path;
  explicit UnknownOpModel(int64_t dim) {
    path = fs::temp_directory_path() /
           ("nibble_test_unknown_op_" + std::to_string(::getpid()) + "_" +
            std::to_string(dim < 0 ? 0 : dim) + ".onnx");
    ModelBuilder m(17);
    m.input("x", DType::F32, {dim});
    m.node("FrobnicateTensor", {"x"}, {"y"}, "my_node");
    m.output("y", DType::F32);
    std::ofstream(path, std::ios::binary) << m.bytes();
  }
  ~UnknownOpModel() { fs::remove(path); }
};

}  // namespace

TEST_CASE("an unsupported operator names the model file and the node, static or dynamic shapes") {
  for (const int64_t dim : {int64_t{4}, int64_t{-1}}) {
    CAPTURE(dim);
    const UnknownOpModel model(dim);
    try {
      Session::load(model.path.string());
      FAIL("a model with an unknown operator loaded");
    } catch (const Error& e) {
      const std::string message = e.what();
      CHECK(e.kind() == ErrorKind::Unsupported);
      CHECK(message.rfind(model.path.string() + ": ", 0) == 0);
      CHECK(message.find("FrobnicateTensor") != std::string::npos);
      CHECK(message.find("'my_node'") != std::string::npos);
    }
  }
}
