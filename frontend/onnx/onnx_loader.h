// ONNX frontend: ModelProto (protobuf, onnx.proto) -> nibble Graph.
#pragma once

#include <cstddef>
#include <string>

#include "engine/ir/graph.h"

namespace onnx {
class TensorProto;
}

namespace nibble::onnx_frontend {

struct LoadOptions {
  // Directory external-data locations are resolved against; external data is refused when empty.
  std::string base_dir;
  size_t max_tensor_bytes = size_t{16} << 30;
};

// Parses and lowers a serialized ModelProto. Nodes come out topologically sorted; initializers
// (including graph inputs that have one) become constants.
Graph load_model(const void* data, size_t size, const LoadOptions& options);
Graph load_model_file(const std::string& path, size_t max_tensor_bytes = size_t{16} << 30);

// TensorProto -> Tensor (raw or typed fields, packed int4, external data). `what` names the
// tensor in error messages.
Tensor tensor_from_proto(const onnx::TensorProto& proto, const LoadOptions& options,
                         const std::string& what);
// Reads a serialized TensorProto file (the ONNX test-data .pb format).
Tensor load_tensor_file(const std::string& path);

// Whole file into memory; Error(Io) naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace nibble::onnx_frontend
