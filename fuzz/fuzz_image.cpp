// libFuzzer target: encoded image bytes -> decode (stb_image) -> Ultralytics letterbox.
//
// Only nibble::Error is an acceptable outcome for bad bytes: any other exception escapes and
// libFuzzer reports it as a crash.
#include <cstddef>
#include <cstdint>

#include "frontend/images/image.h"
#include "nibble/error.h"

namespace {

// Valid headers may declare images of up to 2^24 x 2^24 pixels; decoding those is legitimate
// but would only measure the fuzzer's memory limit.
constexpr int64_t kMaxPixels = 4 << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  try {
    const nibble::images::Image image =
        nibble::images::decode_image(data, size, "fuzz input", kMaxPixels);
    // The canvas size comes from the input too, so odd aspect ratios and tiny canvases are hit.
    const int canvas_width = 1 + data[0] % 96;
    const int canvas_height = 1 + data[size - 1] % 96;
    nibble::images::letterbox(image, canvas_width, canvas_height);
    nibble::images::letterbox(image, 64, 64);
  } catch (const nibble::Error&) {
    // Rejected with a nibble error: the expected outcome for malformed images.
  }
  return 0;
}
