// NumPy .npy reading and writing (the CLI's --input / --save-outputs format).
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "nibble/error.h"
#include "tools/nibble/npy.h"

// The CLI's sources are built only into the nibble executable; compile the one under test here.

using nibble::DType;
using nibble::Error;
using nibble::ErrorKind;
using nibble::Shape;
using nibble::Tensor;
using nibble::cli::parse_npy;
using nibble::cli::serialize_npy;

namespace {

// A version 1.0 file as NumPy writes it: magic, version, 2-byte header length, header padded
// with spaces and a newline to a multiple of 64 bytes, then the data.
std::string npy_v1(std::string header, const std::string& data) {
  const size_t padded = (10 + header.size() + 1 + 63) / 64 * 64 - 10;
  header.resize(padded - 1, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(padded & 0xff);
  bytes += static_cast<char>(padded >> 8);
  return bytes + header + data;
}

ErrorKind error_kind(const std::string& bytes) {
  try {
    parse_npy(bytes, "test.npy");
  } catch (const Error& e) {
    return e.kind();
  }
  FAIL("no error");
  return ErrorKind::Internal;
}

}  // namespace

TEST_CASE("serialize_npy writes what numpy.save writes") {
  // np.save(f, np.array([[1, -2, 3], [4, 5, -6]], dtype='<i2')): a 118-byte header.
  Tensor tensor(DType::I16, {2, 3});
  const int16_t values[] = {1, -2, 3, 4, 5, -6};
  std::memcpy(tensor.raw(), values, sizeof(values));
  const std::string expected =
      npy_v1("{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }",
             std::string(reinterpret_cast<const char*>(values), sizeof(values)));
  CHECK(expected.size() == 128 + sizeof(values));
  CHECK(serialize_npy(tensor) == expected);
}

TEST_CASE("npy round trip keeps dtype, shape and data") {
  for (DType dtype : {DType::F32, DType::F16, DType::F64, DType::I8, DType::I16, DType::I32,
                      DType::I64, DType::U8, DType::U16, DType::U32, DType::U64, DType::Bool}) {
    CAPTURE(nibble::dtype_name(dtype));
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3, 4}, Shape{0, 3}}) {
      Tensor tensor(dtype, shape);
      auto* bytes = static_cast<uint8_t*>(tensor.raw());
      for (size_t i = 0; i < tensor.nbytes(); ++i)
        bytes[i] = dtype == DType::Bool ? i % 2 : static_cast<uint8_t>(i * 37 + 1);
      const std::string file = serialize_npy(tensor);
      CHECK((file.size() - tensor.nbytes()) % 64 == 0);  // data is 64-byte aligned
      const Tensor back = parse_npy(file, "round trip");
      CHECK(back.dtype() == dtype);
      CHECK(back.shape() == shape);
      CHECK(std::memcmp(back.raw(), tensor.raw(), tensor.nbytes()) == 0);
    }
  }
}

TEST_CASE("npy headers in other spellings are accepted") {
  const std::string data(12, '\0');
  SUBCASE("1-d shape, double quotes, native byte order, other key order") {
    const Tensor t = parse_npy(
        npy_v1("{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"=f4\"}", data), "x");
    CHECK(t.shape() == Shape{3});
    CHECK(t.dtype() == DType::F32);
  }
  SUBCASE("Fortran order is the same layout for one dimension") {
    CHECK(parse_npy(npy_v1("{'descr': '<i4', 'fortran_order': True, 'shape': (3,), }", data), "x")
              .dtype() == DType::I32);
  }
  SUBCASE("version 2.0 has a 4-byte header length") {
    std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 6), }";
    header.resize(128 - 12 - 1, ' ');
    header += '\n';  // 116 bytes
    std::string bytes("\x93NUMPY\x02\x00", 8);
    bytes += std::string("\x74\x00\x00\x00", 4);
    CHECK(parse_npy(bytes + header + data, "x").shape() == Shape{2, 6});
  }
  SUBCASE("bool values are normalized to 0/1") {
    const Tensor t = parse_npy(
        npy_v1("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", std::string("\0\7", 2)),
        "x");
    CHECK(t.data<uint8_t>()[0] == 0);
    CHECK(t.data<uint8_t>()[1] == 1);
  }
}

TEST_CASE("int4 tensors are written as one byte per element") {
  Tensor tensor(DType::I4, {2});
  tensor.data<int8_t>()[0] = -8;
  tensor.data<int8_t>()[1] = 7;
  const Tensor back = parse_npy(serialize_npy(tensor), "int4");
  CHECK(back.dtype() == DType::I8);
  CHECK(back.data<int8_t>()[0] == -8);
  CHECK(back.data<int8_t>()[1] == 7);
}

TEST_CASE("malformed or unsupported npy files are clear errors") {
  const std::string data(24, '\0');
  CHECK(error_kind("not an npy file at all") == ErrorKind::InvalidArgument);
  CHECK(error_kind(std::string("\x93NUMPY\x09\x00", 8) + "xxxx") == ErrorKind::InvalidArgument);
  CHECK(error_kind(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                          data.substr(0, 20))) == ErrorKind::InvalidArgument);  // truncated
  CHECK(error_kind(npy_v1("{'descr': '<f4', 'shape': (6,), }", data)) ==
        ErrorKind::InvalidArgument);  // missing key
  CHECK(error_kind(npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", data)) ==
        ErrorKind::InvalidArgument);
  CHECK(error_kind(npy_v1("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,), }", data)) ==
        ErrorKind::InvalidArgument);
  CHECK(error_kind(npy_v1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data)) ==
        ErrorKind::Unsupported);
  CHECK(error_kind(npy_v1("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", data)) ==
        ErrorKind::Unsupported);
  CHECK(error_kind(npy_v1("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", data)) ==
        ErrorKind::Unsupported);
  // A huge declared shape is rejected by size, before anything is allocated.
  CHECK(error_kind(npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, "
                          "1000000, 1000000), }",
                          data)) == ErrorKind::InvalidArgument);
  try {
    nibble::cli::read_npy("/nonexistent/input.npy");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Io);
    CHECK(std::string(e.what()).find("/nonexistent/input.npy") != std::string::npos);
  }
}

TEST_CASE("write_npy and read_npy use files") {
  const auto path = std::filesystem::temp_directory_path() / "nibble_test_npy_roundtrip.npy";
  Tensor tensor(DType::F32, {2, 2});
  for (int i = 0; i < 4; ++i) tensor.data<float>()[i] = 0.5f * static_cast<float>(i);
  nibble::cli::write_npy(path.string(), tensor);
  const Tensor back = nibble::cli::read_npy(path.string());
  std::filesystem::remove(path);
  CHECK(back.shape() == Shape{2, 2});
  CHECK(back.data<float>()[3] == 1.5f);
  CHECK_THROWS_AS(nibble::cli::write_npy("/nonexistent/dir/out.npy", tensor), Error);
}
