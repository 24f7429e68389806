// Loads an ONNX model, runs it once on zero-filled inputs and prints every output's shape.
//
//   embed MODEL.onnx
//
// Dynamic input dimensions are set to 1.
#include <nibble/nibble.h>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.onnx\n", argv[0]);
    return 2;
  }
  try {
    const nibble::Session session = nibble::Session::load(argv[1]);

    nibble::NamedTensors inputs;
    for (const nibble::TensorInfo& info : session.inputs()) {
      nibble::Shape shape = info.shape;
      for (int64_t& dim : shape)
        if (dim < 0) dim = 1;
      inputs.emplace_back(info.name, nibble::Tensor(info.dtype, shape));  // zero-initialized
      std::printf("input  %s %s %s\n", info.name.c_str(), nibble::dtype_name(info.dtype),
                  nibble::shape_str(shape).c_str());
    }

    const std::vector<nibble::Tensor> outputs = session.run(inputs);
    for (size_t i = 0; i < outputs.size(); ++i)
      std::printf("output %s %s %s\n", session.outputs()[i].name.c_str(),
                  nibble::dtype_name(outputs[i].dtype()),
                  nibble::shape_str(outputs[i].shape()).c_str());
  } catch (const nibble::Error& e) {
    std::fprintf(stderr, "embed: %s\n", e.what());
    return 1;
  }
  return 0;
}
