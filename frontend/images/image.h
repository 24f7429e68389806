// Image input for vision models: decoding (JPEG/PNG/BMP/... through stb_image) and the
// Ultralytics letterbox that YOLO models are trained with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nibble/tensor.h"

namespace nibble::images {

// An 8-bit RGB image: rows top to bottom, pixels interleaved R,G,B.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3 bytes
};

// Decodes an image file to RGB (grayscale is expanded, alpha dropped, 16-bit reduced to 8).
// EXIF orientation is not applied. stb's JPEG decoder differs from libjpeg (what cv2.imread
// uses) by a few levels on some pixels; PNG and BMP decode identically. Throws Error(Io) naming
// the path and the reason.
Image load_image(const std::string& path);
// Same for an encoded image in memory; `what` names it in error messages. With max_pixels > 0,
// an image whose header declares more pixels is refused (Error(Io)) before it is decoded.
Image decode_image(const void* data, size_t size, const std::string& what, int64_t max_pixels = 0);

// Bilinear resize with half-pixel centers, bit-exact with OpenCV's cv2.resize(INTER_LINEAR) on
// 8-bit images as built for x86 (fixed-point weights with 11 fractional bits).
Image resize_bilinear(const Image& image, int width, int height);

// Where the original image sits inside a letterboxed one.
struct Letterbox {
  double scale = 1;       // letterboxed pixels per original pixel
  int resized_width = 0;  // size of the scaled image inside the padded canvas
  int resized_height = 0;
  int pad_left = 0;  // canvas pixels left of / above the scaled image
  int pad_top = 0;
  int width = 0;  // canvas size
  int height = 0;
};

// The geometry of Ultralytics LetterBox(auto=False, scaleup=True, center=True) for an image of
// image_width x image_height placed on a width x height canvas.
Letterbox plan_letterbox(int image_width, int image_height, int width, int height);

struct LetterboxedImage {
  Tensor tensor;  // float [1, 3, height, width], RGB scaled to [0, 1], padding 114/255
  Letterbox geometry;
};

// Scales `image` to fit a width x height canvas keeping its aspect ratio, centers it and pads
// with gray 114, exactly as Ultralytics preprocesses images for YOLO.
LetterboxedImage letterbox(const Image& image, int width, int height);

}  // namespace nibble::images
