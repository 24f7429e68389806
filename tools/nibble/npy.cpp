#include "tools/nibble/npy.h"

#include <bit>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

#include "nibble/error.h"

namespace nibble::cli {

namespace {

static_assert(std::endian::native == std::endian::little,
              ".npy data is copied as is: nibble assumes a little-endian host");

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct NpyType {
  char kind;  // 'f', 'i', 'u', 'b'
  int size;
  DType dtype;
};

constexpr NpyType kTypes[] = {
    {'f', 2, DType::F16}, {'f', 4, DType::F32}, {'f', 8, DType::F64}, {'i', 1, DType::I8},
    {'i', 2, DType::I16}, {'i', 4, DType::I32}, {'i', 8, DType::I64}, {'u', 1, DType::U8},
    {'u', 2, DType::U16}, {'u', 4, DType::U32}, {'u', 8, DType::U64}, {'b', 1, DType::Bool},
};

// Parses the header, a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 640, 640), }
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& what) : text_(text), what_(what) {}

  struct Header {
    std::string descr;
    bool fortran_order = false;
    Shape shape;
  };

  Header parse() {
    Header header;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (!accept('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        header.descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order") {
        header.fortran_order = boolean();
        has_order = true;
      } else if (key == "shape") {
        header.shape = tuple_of_ints();
        has_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      if (!accept(',')) {
        expect('}');
        break;
      }
    }
    if (!has_descr || !has_order || !has_shape)
      fail("the header needs the keys 'descr', 'fortran_order' and 'shape'");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw Error(ErrorKind::InvalidArgument, "bad .npy header in '" + what_ + "': " + message);
  }

  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
  }
  bool accept_word(const char* word) {
    skip_space();
    if (text_.compare(pos_, std::strlen(word), word) != 0) return false;
    pos_ += std::strlen(word);
    return true;
  }

  std::string string_literal() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"'))
      fail("expected a string at offset " + std::to_string(pos_));
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string value = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return value;
  }

  bool boolean() {
    if (accept_word("True")) return true;
    if (accept_word("False")) return false;
    fail("expected True or False at offset " + std::to_string(pos_));
  }

  Shape tuple_of_ints() {
    Shape shape;
    expect('(');
    while (!accept(')')) {
      skip_space();
      const size_t start = pos_;
      int64_t dim = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        if (dim > (int64_t{1} << 56)) fail("dimension too large");
        dim = dim * 10 + (text_[pos_++] - '0');
      }
      if (pos_ == start) fail("expected a dimension at offset " + std::to_string(pos_));
      accept('L');  // Python 2 long suffix, still found in old files
      shape.push_back(dim);
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return shape;
  }

  const std::string& text_;
  const std::string& what_;
  size_t pos_ = 0;
};

DType dtype_from_descr(const std::string& descr, const std::string& what) {
  if (descr.size() >= 3) {
    const char order = descr[0];
    const char kind = descr[1];
    const std::string size_text = descr.substr(2);
    const bool digits = size_text.find_first_not_of("0123456789") == std::string::npos;
    const int size = digits && size_text.size() <= 2 ? std::stoi(size_text) : 0;
    for (const NpyType& type : kTypes) {
      if (type.kind != kind || type.size != size) continue;
      // '|' = byte order not applicable, '=' = native (little endian, see the static_assert).
      if (order == '<' || order == '|' || order == '=' || (order == '>' && size == 1))
        return type.dtype;
      if (order == '>')
        throw Error(ErrorKind::Unsupported, "'" + what + "' is big endian ('" + descr +
                                                "'); nibble reads little-endian .npy files");
    }
  }
  throw Error(ErrorKind::Unsupported, "'" + what + "' has element type '" + descr +
                                          "'; supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1");
}

std::string descr_for(DType dtype) {
  DType stored = dtype;
  if (dtype == DType::I4) stored = DType::I8;
  if (dtype == DType::U4) stored = DType::U8;
  for (const NpyType& type : kTypes) {
    if (type.dtype != stored) continue;
    return std::string(type.size == 1 ? "|" : "<") + type.kind + std::to_string(type.size);
  }
  throw Error(ErrorKind::Unsupported,
              std::string("cannot write a ") + dtype_name(dtype) + " tensor as .npy");
}

uint32_t read_le(const std::string& bytes, size_t offset, size_t width) {
  uint32_t value = 0;
  for (size_t i = 0; i < width; ++i)
    value |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[offset + i])) << (8 * i);
  return value;
}

std::string shape_literal(const Shape& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

}  // namespace

Tensor parse_npy(const std::string& bytes, const std::string& what) {
  auto bad = [&](const std::string& message) {
    return Error(ErrorKind::InvalidArgument, "'" + what + "' is not a valid .npy file: " + message);
  };
  if (bytes.size() < kMagicSize + 4 || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0)
    throw bad("missing the \\x93NUMPY magic");
  const int major = static_cast<uint8_t>(bytes[kMagicSize]);
  // Version 1 has a 2-byte header length; 2 and 3 (UTF-8 header) have 4 bytes.
  size_t length_width = 0;
  if (major == 1)
    length_width = 2;
  else if (major == 2 || major == 3)
    length_width = 4;
  else
    throw bad("unknown format version " + std::to_string(major));
  const size_t header_start = kMagicSize + 2 + length_width;
  if (bytes.size() < header_start) throw bad("truncated header");
  const size_t header_size = read_le(bytes, kMagicSize + 2, length_width);
  if (header_size > bytes.size() - header_start) throw bad("truncated header");
  const std::string header_text = bytes.substr(header_start, header_size);

  const HeaderParser::Header header = HeaderParser(header_text, what).parse();
  const DType dtype = dtype_from_descr(header.descr, what);
  if (header.fortran_order && header.shape.size() > 1)
    throw Error(ErrorKind::Unsupported, "'" + what +
                                            "' is stored in Fortran order; save it with "
                                            "numpy.ascontiguousarray() first");

  // Compare sizes before allocating: the header may declare a huge shape.
  const size_t data_size = bytes.size() - header_start - header_size;
  const size_t element_size = dtype_size(dtype);
  const auto numel = static_cast<size_t>(shape_numel(header.shape));
  if (data_size % element_size != 0 || data_size / element_size != numel)
    throw bad("holds " + std::to_string(data_size) + " data bytes, but " + header.descr + " " +
              shape_str(header.shape) + " needs " + std::to_string(numel) + " elements of " +
              std::to_string(element_size) + " bytes");
  Tensor tensor(dtype, header.shape);
  if (tensor.nbytes() > 0)
    std::memcpy(tensor.raw(), bytes.data() + header_start + header_size, tensor.nbytes());
  if (dtype == DType::Bool) {
    uint8_t* values = tensor.data<uint8_t>();
    for (int64_t i = 0; i < tensor.numel(); ++i) values[i] = values[i] != 0;
  }
  return tensor;
}

Tensor read_npy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(ErrorKind::Io, "cannot open '" + path + "': " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) throw Error(ErrorKind::Io, "cannot read '" + path + "': " + std::strerror(errno));
  return parse_npy(bytes, path);
}

std::string serialize_npy(const Tensor& tensor) {
  std::string header = "{'descr': '" + descr_for(tensor.dtype()) +
                       "', 'fortran_order': False, 'shape': " + shape_literal(tensor.shape()) +
                       ", }";
  // NumPy pads the header with spaces and a newline so the data starts 64-byte aligned.
  // Version 1 stores the header length in 2 bytes, version 2 in 4.
  auto padded_header_size = [&](size_t prefix) {
    const size_t unpadded = prefix + header.size() + 1;
    return header.size() + 1 + (64 - unpadded % 64) % 64;
  };
  const bool version1 = padded_header_size(kMagicSize + 4) <= 65535;
  const size_t length_width = version1 ? 2 : 4;
  const size_t header_size = padded_header_size(kMagicSize + 2 + length_width);
  header.resize(header_size - 1, ' ');
  header += '\n';

  std::string bytes(kMagic, kMagicSize);
  bytes += static_cast<char>(version1 ? 1 : 2);
  bytes += '\0';
  for (size_t i = 0; i < length_width; ++i)
    bytes += static_cast<char>((header_size >> (8 * i)) & 0xff);
  bytes += header;
  if (tensor.nbytes() > 0) bytes.append(static_cast<const char*>(tensor.raw()), tensor.nbytes());
  return bytes;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  const std::string bytes = serialize_npy(tensor);
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) throw Error(ErrorKind::Io, "cannot create '" + path + "': " + std::strerror(errno));
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) throw Error(ErrorKind::Io, "cannot write '" + path + "': " + std::strerror(errno));
}

}  // namespace nibble::cli
