// nibble — errors thrown by every layer of the engine.
#pragma once

#include <stdexcept>
#include <string>

namespace nibble {

// What went wrong, so callers (CLI exit codes, conformance runner) can tell "we do not support
// this" from "this model/input is broken".
enum class ErrorKind {
  InvalidModel,     // corrupt or inconsistent ONNX (truncated protobuf, dangling names, bad attrs)
  Unsupported,      // valid ONNX that nibble does not implement (op, dtype, attribute value)
  InvalidArgument,  // bad caller input: wrong shape/dtype, unknown input name, bad option
  Io,               // missing or unreadable file
  Internal,         // a bug in nibble
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace nibble
