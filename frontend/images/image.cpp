#include "frontend/images/image.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>

#include "nibble/error.h"

namespace nibble::images {

namespace {

constexpr int kChannels = 3;
constexpr uint8_t kPadValue = 114;

[[noreturn]] void fail_io(const std::string& message) { throw Error(ErrorKind::Io, message); }

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) fail_io("cannot open image '" + path + "': " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) fail_io("cannot read image '" + path + "': " + std::strerror(errno));
  return bytes;
}

// Python's round() (ties to even), which Ultralytics uses for the letterbox geometry; nearbyint
// follows the default rounding mode, round-to-nearest-even.
int python_round(double x) { return static_cast<int>(std::nearbyint(x)); }

constexpr int kWeightBits = 11;  // OpenCV's INTER_RESIZE_COEF_BITS

// One output coordinate of the bilinear resize: the first source sample and the fixed-point
// weights of it and of the next sample.
struct Tap {
  int index = 0;
  int32_t w0 = 0;
  int32_t w1 = 0;
};

// Source positions follow OpenCV: computed in float from half-pixel centers, weights rounded to
// 11 bits separately (they may not sum to exactly 2048). Columns outside the image are clamped
// to the edge pixel with weight (1, 0); rows are not clamped here (OpenCV clamps the row index
// but keeps the weights), which changes the rounding of the first and last rows.
std::vector<Tap> make_taps(int dst_size, int src_size, bool clamp_to_edge) {
  // Computed like OpenCV's scale_x so that positions round identically.
  const double scale = 1.0 / (static_cast<double>(dst_size) / src_size);
  std::vector<Tap> taps(static_cast<size_t>(dst_size));
  for (int d = 0; d < dst_size; ++d) {
    float pos = static_cast<float>((d + 0.5) * scale - 0.5);
    int index = static_cast<int>(std::floor(pos));
    float frac = pos - static_cast<float>(index);
    if (clamp_to_edge && index < 0) {
      index = 0;
      frac = 0;
    }
    if (clamp_to_edge && index >= src_size - 1) {
      index = src_size - 1;
      frac = 0;
    }
    constexpr float one = 1 << kWeightBits;
    taps[static_cast<size_t>(d)] = {index, static_cast<int32_t>(std::nearbyint((1.f - frac) * one)),
                                    static_cast<int32_t>(std::nearbyint(frac * one))};
  }
  return taps;
}

void check_size(int width, int height, const char* what) {
  if (width <= 0 || height <= 0)
    throw Error(ErrorKind::InvalidArgument, std::string(what) + " must be positive, got " +
                                                std::to_string(width) + "x" +
                                                std::to_string(height));
}

// Checks the Huffman tables of a JPEG before stb_image 2.27 (Debian 12) decodes it, which
// writes past its tables for a DHT segment declaring more than 256 codes, and decodes a scan
// whose tables were never defined with whatever its (uninitialized) decoder memory holds,
// reading out of bounds or failing an assertion. Walks the markers the way
// stb reads them, so every table stb would build or use is checked. Not a JPEG: nothing to do.
void check_jpeg_huffman_tables(const uint8_t* data, size_t size, const std::string& what) {
  // SOI, possibly after fill bytes (FF FF D8 is a JPEG to stb).
  size_t p = 1;
  while (p < size && data[p] == 0xFF) ++p;
  if (size < 2 || data[0] != 0xFF || p >= size || data[p] != 0xD8) return;
  ++p;
  auto byte = [&](size_t i) -> unsigned { return i < size ? data[i] : 0; };  // stb reads 0 at EOF
  auto corrupt = [&](const std::string& reason) {
    fail_io("cannot decode image '" + what + "': corrupt JPEG (" + reason + ")");
  };
  bool defined[2][4] = {};  // [DC, AC][table id]
  bool progressive = false;
  bool in_scan = false;
  while (p + 1 < size) {
    const unsigned marker = data[p + 1];
    const bool restart = marker >= 0xD0 && marker <= 0xD7;
    if (data[p] != 0xFF || marker == 0xFF || (in_scan && (marker == 0x00 || restart))) {
      ++p;  // entropy-coded data, stuffing, restart markers, fill bytes or garbage stb skips
      continue;
    }
    in_scan = false;
    if (marker == 0xD9) return;  // end of image
    if (marker == 0xD8 || marker == 0x01 || restart) {
      p += 2;  // markers without a length
      continue;
    }
    const size_t length = byte(p + 2) << 8 | byte(p + 3);
    if (marker == 0xC2) progressive = true;
    if (marker == 0xC4) {
      // Tables follow one another while stb's remaining length L > 0, each read in full.
      int64_t remaining = static_cast<int64_t>(length) - 2;
      size_t q = p + 4;
      while (remaining > 0 && q < size) {
        const unsigned table_class = byte(q) >> 4, id = byte(q) & 15;
        if (table_class > 1 || id > 3) break;  // stb refuses the segment
        unsigned codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += byte(q + i);
        if (codes > 256) {
          corrupt("a Huffman table declares " + std::to_string(codes) +
                  " codes, at most 256 are possible");
        }
        defined[table_class][id] = true;
        q += 17 + codes;
        remaining -= 17 + static_cast<int64_t>(codes);
      }
    }
    if (marker == 0xDA) {
      // Start of scan: components with their DC/AC table ids, then Ss, Se, Ah/Al. A progressive
      // DC scan uses DC tables only when it is a first pass (Ah = 0); an AC scan AC tables only.
      const size_t components = byte(p + 4);
      const size_t spectral = p + 5 + 2 * components;
      const bool dc_scan = byte(spectral) == 0;
      const bool uses_dc = !progressive || (dc_scan && (byte(spectral + 2) >> 4) == 0);
      const bool uses_ac = !progressive || !dc_scan;
      for (size_t c = 0; c < components; ++c) {
        const unsigned tables = byte(p + 6 + 2 * c), dc = tables >> 4, ac = tables & 15;
        if (dc > 3 || ac > 3) break;  // stb refuses the scan
        if ((uses_dc && !defined[0][dc]) || (uses_ac && !defined[1][ac])) {
          corrupt("a scan uses a Huffman table that is not defined");
        }
      }
      in_scan = true;  // entropy-coded data follows the header
    }
    p += 2 + std::max<size_t>(length, 2);
  }
}

// Checks that every chunk of a PNG fits in the file before stb_image reads it: stb grows its
// compressed-data buffer to a chunk's declared length before reading the chunk, so a 100-byte
// file declaring a 2 GiB IDAT chunk made it allocate 2 GiB (fuzz finding). Not a PNG: nothing to do.
void check_png_chunk_lengths(const uint8_t* data, size_t size, const std::string& what) {
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size < 8 || std::memcmp(data, signature, 8) != 0) return;
  size_t p = 8;
  while (p + 8 <= size) {  // length and type; stb reports a truncated header itself
    const uint64_t length = uint64_t(data[p]) << 24 | uint64_t(data[p + 1]) << 16 |
                            uint64_t(data[p + 2]) << 8 | data[p + 3];
    if (length > size - p - 8) {
      fail_io("cannot decode image '" + what + "': corrupt PNG (a chunk declares " +
              std::to_string(length) + " bytes, more than the " + std::to_string(size - p - 8) +
              " left in the file)");
    }
    p += 8 + length + 4;  // header, data, CRC
  }
}

}  // namespace

Image decode_image(const void* data, size_t size, const std::string& what, int64_t max_pixels) {
  if (size > static_cast<size_t>(std::numeric_limits<int>::max()))
    fail_io("cannot decode image '" + what + "': file is larger than 2 GiB");
  const auto* bytes = static_cast<const stbi_uc*>(data);
  const int length = static_cast<int>(size);
  check_jpeg_huffman_tables(bytes, size, what);
  check_png_chunk_lengths(bytes, size, what);
  int width = 0, height = 0, channels_in_file = 0;
  if (max_pixels > 0 && stbi_info_from_memory(bytes, length, &width, &height, &channels_in_file) &&
      static_cast<int64_t>(width) * height > max_pixels) {
    fail_io("cannot decode image '" + what + "': " + std::to_string(width) + "x" +
            std::to_string(height) + " pixels exceed the limit of " + std::to_string(max_pixels));
  }
  auto fail_decode = [&] {
    const char* reason = stbi_failure_reason();
    fail_io("cannot decode image '" + what + "': " + (reason ? reason : "unknown format"));
  };
  Image image;
  if (stbi_is_16_bit_from_memory(bytes, length)) {
    // stb_image 2.27 reads past its buffer when it converts the channels of a 16-bit PNM, and
    // reads PNM samples little-endian where Netpbm (and OpenCV) store them big-endian. 16-bit
    // images keep their channels and are reduced here: high byte, gray replicated, alpha dropped.
    std::unique_ptr<stbi_us, void (*)(void*)> pixels(
        stbi_load_16_from_memory(bytes, length, &width, &height, &channels_in_file, 0), stbi_image_free);
    if (!pixels) fail_decode();
    const bool netpbm = size >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6');
    image.rgb.resize(static_cast<size_t>(width) * height * kChannels);
    const bool gray = channels_in_file < 3;
    for (size_t i = 0; i < static_cast<size_t>(width) * height; ++i) {
      const stbi_us* pixel = pixels.get() + i * static_cast<size_t>(channels_in_file);
      for (int c = 0; c < kChannels; ++c) {
        const stbi_us sample = pixel[gray ? 0 : c];
        image.rgb[i * kChannels + c] = static_cast<uint8_t>(netpbm ? sample & 0xFF : sample >> 8);
      }
    }
  } else {
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
        stbi_load_from_memory(bytes, length, &width, &height, &channels_in_file, kChannels), stbi_image_free);
    if (!pixels) fail_decode();
    image.rgb.assign(pixels.get(), pixels.get() + static_cast<size_t>(width) * height * kChannels);
  }
  image.width = width;
  image.height = height;
  return image;
}

Image load_image(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.empty()) fail_io("cannot decode image '" + path + "': file is empty");
  return decode_image(bytes.data(), bytes.size(), path);
}

Image resize_bilinear(const Image& image, int width, int height) {
  check_size(image.width, image.height, "image size");
  check_size(width, height, "resize target");
  const std::vector<Tap> columns = make_taps(width, image.width, /*clamp_to_edge=*/true);
  const std::vector<Tap> rows = make_taps(height, image.height, /*clamp_to_edge=*/false);
  const size_t src_stride = static_cast<size_t>(image.width) * kChannels;
  const size_t dst_stride = static_cast<size_t>(width) * kChannels;

  // Horizontal pass into 32-bit sums (pixel * 2^11) for every source row.
  std::vector<int32_t> horizontal(static_cast<size_t>(image.height) * dst_stride);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* src = image.rgb.data() + static_cast<size_t>(y) * src_stride;
    int32_t* dst = horizontal.data() + static_cast<size_t>(y) * dst_stride;
    for (int x = 0; x < width; ++x) {
      const Tap& tap = columns[static_cast<size_t>(x)];
      const int next = std::min(tap.index + 1, image.width - 1);
      for (int c = 0; c < kChannels; ++c)
        dst[x * kChannels + c] =
            src[tap.index * kChannels + c] * tap.w0 + src[next * kChannels + c] * tap.w1;
    }
  }

  // Vertical pass with the rounding of OpenCV's SIMD path (the one x86 builds run):
  // ((s0 >> 4) * w0 >> 16) + ((s1 >> 4) * w1 >> 16), then a rounding shift by 2.
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(height) * dst_stride);
  for (int y = 0; y < height; ++y) {
    const Tap& tap = rows[static_cast<size_t>(y)];
    const int row0 = std::clamp(tap.index, 0, image.height - 1);
    const int row1 = std::clamp(tap.index + 1, 0, image.height - 1);
    const int32_t* s0 = horizontal.data() + static_cast<size_t>(row0) * dst_stride;
    const int32_t* s1 = horizontal.data() + static_cast<size_t>(row1) * dst_stride;
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(y) * dst_stride;
    for (size_t i = 0; i < dst_stride; ++i) {
      const int32_t sum = (((s0[i] >> 4) * tap.w0) >> 16) + (((s1[i] >> 4) * tap.w1) >> 16);
      dst[i] = static_cast<uint8_t>(std::clamp((sum + 2) >> 2, 0, 255));
    }
  }
  return out;
}

Letterbox plan_letterbox(int image_width, int image_height, int width, int height) {
  check_size(image_width, image_height, "image size");
  check_size(width, height, "letterbox size");
  Letterbox box;
  box.width = width;
  box.height = height;
  box.scale = std::min(static_cast<double>(height) / image_height,
                       static_cast<double>(width) / image_width);
  // A very thin image can round to zero pixels; keep one so the resize stays defined.
  box.resized_width = std::max(1, python_round(image_width * box.scale));
  box.resized_height = std::max(1, python_round(image_height * box.scale));
  const double pad_x = (width - box.resized_width) / 2.0;
  const double pad_y = (height - box.resized_height) / 2.0;
  // Ultralytics splits an odd padding with round(d - 0.1) before and round(d + 0.1) after.
  box.pad_left = python_round(pad_x - 0.1);
  box.pad_top = python_round(pad_y - 0.1);
  return box;
}

LetterboxedImage letterbox(const Image& image, int width, int height) {
  LetterboxedImage result;
  result.geometry = plan_letterbox(image.width, image.height, width, height);
  const Letterbox& box = result.geometry;
  Image resized_storage;
  const Image* resized = &image;
  if (box.resized_width != image.width || box.resized_height != image.height) {
    resized_storage = resize_bilinear(image, box.resized_width, box.resized_height);
    resized = &resized_storage;
  }

  result.tensor = Tensor(DType::F32, {1, kChannels, height, width});
  float* planes = result.tensor.data<float>();
  const size_t plane_size = static_cast<size_t>(width) * height;
  std::fill(planes, planes + plane_size * kChannels, kPadValue / 255.0f);
  for (int y = 0; y < box.resized_height; ++y) {
    const uint8_t* src =
        resized->rgb.data() + static_cast<size_t>(y) * box.resized_width * kChannels;
    const size_t row_start = static_cast<size_t>(y + box.pad_top) * width + box.pad_left;
    for (int x = 0; x < box.resized_width; ++x)
      for (int c = 0; c < kChannels; ++c)
        planes[c * plane_size + row_start + x] = src[x * kChannels + c] / 255.0f;
  }
  return result;
}

}  // namespace nibble::images
