// NumPy .npy files (format versions 1-3, little endian, C order) to and from nibble tensors.
//
// Element types: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1. int4/uint4 tensors are written as i1/u1
// (nibble holds them one element per byte already).
#pragma once

#include <string>

#include "nibble/tensor.h"

namespace nibble::cli {

// Throws Error(Io) when the file cannot be read, Error(InvalidArgument) for a malformed file and
// Error(Unsupported) for valid files nibble cannot hold (big endian, Fortran order, other dtypes).
Tensor read_npy(const std::string& path);
// `what` names the data in error messages.
Tensor parse_npy(const std::string& bytes, const std::string& what);

// Throws Error(Io) when the file cannot be written, Error(Unsupported) for string/bfloat16.
void write_npy(const std::string& path, const Tensor& tensor);
std::string serialize_npy(const Tensor& tensor);

}  // namespace nibble::cli
