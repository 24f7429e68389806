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

}  // namespace

Image decode_image(const void* data, size_t size, const std::string& what) {
  if (size > static_cast<size_t>(std::numeric_limits<int>::max()))
    fail_io("cannot decode image '" + what + "': file is larger than 2 GiB");
  int width = 0, height = 0, channels_in_file = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(static_cast<const stbi_uc*>(data), static_cast<int>(size), &width,
                            &height, &channels_in_file, kChannels),
      stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    fail_io("cannot decode image '" + what + "': " + (reason ? reason : "unknown format"));
  }
  Image image;
  image.width = width;
  image.height = height;
  image.rgb.assign(pixels.get(), pixels.get() + static_cast<size_t>(width) * height * kChannels);
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
