// Image decoding, bilinear resize and the Ultralytics letterbox.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "frontend/images/image.h"
#include "nibble/error.h"
#include "tests/asset_paths.h"

using nibble::Error;
using nibble::ErrorKind;
using nibble::images::Image;

namespace {

Image make_image(int width, int height, std::vector<uint8_t> rgb) {
  Image image;
  image.width = width;
  image.height = height;
  image.rgb = std::move(rgb);
  return image;
}

// A 24-bit uncompressed BMP: rows stored bottom-up as B,G,R, each padded to 4 bytes.
std::string make_bmp(const Image& image) {
  const int row_size = (image.width * 3 + 3) / 4 * 4;
  const int data_size = row_size * image.height;
  std::string bmp;
  auto put = [&](uint32_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) bmp += static_cast<char>((value >> (8 * i)) & 0xff);
  };
  bmp += "BM";
  put(54 + data_size, 4);
  put(0, 4);
  put(54, 4);  // pixel data offset
  put(40, 4);  // BITMAPINFOHEADER
  put(image.width, 4);
  put(image.height, 4);
  put(1, 2);   // planes
  put(24, 2);  // bits per pixel
  put(0, 4);   // no compression
  put(data_size, 4);
  put(2835, 4);
  put(2835, 4);
  put(0, 4);
  put(0, 4);
  for (int y = image.height - 1; y >= 0; --y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = &image.rgb[(y * image.width + x) * 3];
      bmp += static_cast<char>(p[2]);
      bmp += static_cast<char>(p[1]);
      bmp += static_cast<char>(p[0]);
    }
    bmp.append(row_size - image.width * 3, '\0');
  }
  return bmp;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("nibble_test_images_" + name)).string();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

TEST_CASE("load_image decodes a BMP to RGB, top row first") {
  const Image original = make_image(2, 2, {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30});
  const std::string path = temp_path("2x2.bmp");
  write_file(path, make_bmp(original));
  const Image decoded = nibble::images::load_image(path);
  std::filesystem::remove(path);
  CHECK(decoded.width == 2);
  CHECK(decoded.height == 2);
  CHECK(decoded.rgb == original.rgb);
}

TEST_CASE("load_image reports missing and undecodable files as Io errors naming the path") {
  const std::string missing = temp_path("does_not_exist.jpg");
  try {
    nibble::images::load_image(missing);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Io);
    CHECK(std::string(e.what()).find(missing) != std::string::npos);
    CHECK(std::string(e.what()).find("No such file") != std::string::npos);
  }

  const std::string garbage = temp_path("garbage.png");
  write_file(garbage, "this is not an image");
  try {
    nibble::images::load_image(garbage);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Io);
    // stb's reason follows the path.
    CHECK(std::string(e.what()).find("cannot decode image '" + garbage + "': ") == 0);
  }
  std::filesystem::remove(garbage);

  const std::string empty = temp_path("empty.jpg");
  write_file(empty, "");
  CHECK_THROWS_AS(nibble::images::load_image(empty), Error);
  std::filesystem::remove(empty);
}

TEST_CASE("resize_bilinear uses half-pixel centers and clamps at the edges") {
  // 2x1 -> 4x1: samples at x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
  const Image image = make_image(2, 1, {0, 200, 10, 100, 40, 10});
  const Image resized = nibble::images::resize_bilinear(image, 4, 1);
  CHECK(resized.rgb == std::vector<uint8_t>{0, 200, 10, 25, 160, 10, 75, 80, 10, 100, 40, 10});
}

TEST_CASE("resize_bilinear matches cv2.resize(INTER_LINEAR) bit for bit") {
  // A random 5x4 image and cv2.resize's output (OpenCV on x86) for a mixed up/down scale.
  const Image image =
      make_image(5, 4, {139, 74,  229, 241, 169, 65,  6,   160, 149, 106, 38, 175, 188, 205, 175,
                        229, 98,  249, 10,  148, 95,  86,  147, 198, 66,  39, 106, 213, 171, 45,
                        167, 57,  69,  81,  55,  14,  153, 178, 215, 76,  52, 39,  250, 72,  215,
                        50,  161, 223, 112, 172, 161, 233, 38,  17,  89,  1,  221, 6,   242, 127});
  const std::vector<uint8_t> cv2_7x3 = {
      154, 78,  232, 182, 128, 140, 150, 163, 95,  19,  158, 157, 76,  72,  162, 139,
      107, 159, 192, 199, 153, 198, 78,  159, 111, 91,  99,  67,  119, 98,  120, 163,
      207, 85,  79,  111, 140, 78,  97,  232, 122, 130, 69,  143, 197, 91,  149, 163,
      139, 126, 112, 219, 61,  50,  125, 24,  150, 70,  97,  170, 47,  213, 142};
  const std::vector<uint8_t> cv2_3x6 = {
      173, 106, 174, 6,   160, 149, 160, 149, 175, 164, 110, 186, 46,  154, 174, 162, 138, 120,
      153, 105, 173, 97,  152, 201, 168, 117, 80,  141, 66,  75,  142, 173, 212, 187, 75,  141,
      104, 110, 126, 193, 108, 116, 113, 113, 157, 71,  164, 202, 233, 38,  17,  34,  161, 158};
  CHECK(nibble::images::resize_bilinear(image, 7, 3).rgb == cv2_7x3);
  CHECK(nibble::images::resize_bilinear(image, 3, 6).rgb == cv2_3x6);
  CHECK(nibble::images::resize_bilinear(image, 5, 4).rgb == image.rgb);
}

TEST_CASE("plan_letterbox follows Ultralytics LetterBox geometry") {
  SUBCASE("bus.jpg (810x1080) into 640x640: scaled to 480x640, padded 80 left and right") {
    const auto box = nibble::images::plan_letterbox(810, 1080, 640, 640);
    CHECK(box.scale == doctest::Approx(640.0 / 1080.0));
    CHECK(box.resized_width == 480);
    CHECK(box.resized_height == 640);
    CHECK(box.pad_left == 80);
    CHECK(box.pad_top == 0);
  }
  SUBCASE("odd padding puts the extra pixel after the image") {
    // 3x2 into 4x4: scale 4/3, resized 4x3, one row of padding to split -> top 0, bottom 1.
    const auto box = nibble::images::plan_letterbox(3, 2, 4, 4);
    CHECK(box.resized_width == 4);
    CHECK(box.resized_height == 3);
    CHECK(box.pad_top == 0);
    CHECK(box.pad_left == 0);
  }
  SUBCASE("sizes round half to even, like Python's round()") {
    CHECK(nibble::images::plan_letterbox(5, 4, 4, 2).resized_width == 2);  // 2.5 -> 2
    CHECK(nibble::images::plan_letterbox(7, 4, 6, 2).resized_width == 4);  // 3.5 -> 4
    CHECK(nibble::images::plan_letterbox(7, 4, 6, 2).pad_left == 1);
  }
  SUBCASE("upscales small images") {
    const auto box = nibble::images::plan_letterbox(32, 16, 64, 64);
    CHECK(box.scale == 2.0);
    CHECK(box.resized_width == 64);
    CHECK(box.resized_height == 32);
    CHECK(box.pad_top == 16);
  }
  CHECK_THROWS_AS(nibble::images::plan_letterbox(0, 10, 640, 640), Error);
  CHECK_THROWS_AS(nibble::images::plan_letterbox(10, 10, 640, -1), Error);
}

TEST_CASE("letterbox produces a padded float NCHW RGB tensor in [0, 1]") {
  // 2x1 into 4x4: scale 2, resized 4x2, one padding row above and below.
  const Image image = make_image(2, 1, {0, 200, 10, 100, 40, 10});
  const auto result = nibble::images::letterbox(image, 4, 4);
  REQUIRE(result.tensor.dtype() == nibble::DType::F32);
  REQUIRE(result.tensor.shape() == nibble::Shape{1, 3, 4, 4});
  CHECK(result.geometry.pad_top == 1);
  CHECK(result.geometry.pad_left == 0);
  const uint8_t pad = 114;
  const std::vector<std::vector<uint8_t>> expected = {
      {pad, pad, pad, pad, 0, 25, 75, 100, 0, 25, 75, 100, pad, pad, pad, pad},      // R
      {pad, pad, pad, pad, 200, 160, 80, 40, 200, 160, 80, 40, pad, pad, pad, pad},  // G
      {pad, pad, pad, pad, 10, 10, 10, 10, 10, 10, 10, 10, pad, pad, pad, pad},      // B
  };
  const float* data = result.tensor.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 16; ++i) {
      CAPTURE(c);
      CAPTURE(i);
      CHECK(data[c * 16 + i] == expected[c][i] / 255.0f);
    }
}

TEST_CASE("letterbox of the shared bus.jpg") {
  const std::string path = nibble::testing::asset("images/bus.jpg");
  if (path.empty()) {
    MESSAGE("SKIPPED: images/bus.jpg not found under " << nibble::testing::assets_dir());
    return;
  }
  const Image image = nibble::images::load_image(path);
  CHECK(image.width == 810);
  CHECK(image.height == 1080);
  const auto result = nibble::images::letterbox(image, 640, 640);
  CHECK(result.tensor.shape() == nibble::Shape{1, 3, 640, 640});
  // The 80-pixel side bands are padding; the image starts at column 80.
  const float* red = result.tensor.data<float>();
  CHECK(red[79] == 114 / 255.0f);
  CHECK(red[640 * 320 + 79] == 114 / 255.0f);
  CHECK(red[640 * 320 + 560] == 114 / 255.0f);
}
