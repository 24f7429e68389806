// nibble — element types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nibble {

// Values equal ONNX TensorProto.DataType so the frontend converts by cast.
enum class DType : int32_t {
  Undefined = 0,
  F32 = 1,
  U8 = 2,
  I8 = 3,
  U16 = 4,
  I16 = 5,
  I32 = 6,
  I64 = 7,
  String = 8,
  Bool = 9,
  F16 = 10,
  F64 = 11,
  U32 = 12,
  U64 = 13,
  BF16 = 16,
  U4 = 21,
  I4 = 22,
};

// Bytes one element occupies in a nibble tensor. int4/uint4 are held one element per byte
// (sign-extended / zero-extended) in tensors; only packed kernel weights store two per byte.
size_t dtype_size(DType t);
// Name as in ONNX ("float", "int8", "int4", ...).
const char* dtype_name(DType t);
// True for the dtypes nibble tensors can hold (every enumerator except Undefined/String/BF16).
bool dtype_supported(DType t);
// Throws Error(Unsupported) naming the ONNX type number when nibble cannot hold it.
DType dtype_from_onnx(int32_t onnx_type);

}  // namespace nibble

namespace nibble {

// IEEE 754 binary16 <-> binary32 (round to nearest even), for float16 tensors.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

}  // namespace nibble
