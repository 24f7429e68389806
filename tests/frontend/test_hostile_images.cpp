// Hostile image files found by fuzz/fuzz_image: each must give a nibble::Error, never touch
// memory outside the decoder's buffers.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "frontend/images/image.h"
#include "nibble/error.h"
#include "tests/asset_paths.h"

using nibble::Error;
using nibble::ErrorKind;
using nibble::images::decode_image;

namespace {

// SOI, APP0 (JFIF), then a DHT segment whose 16 code-length counts sum to `codes`.
std::vector<uint8_t> jpeg_with_huffman_codes(int codes, int segments_before_dht = 0) {
  std::vector<uint8_t> j = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0,
                            1, 1, 0, 0, 1, 0, 1, 0, 0};
  for (int i = 0; i < segments_before_dht; ++i) j.insert(j.end(), {0xFF, 0xFE, 0x00, 0x04, 'h', 'i'});
  j.insert(j.end(), {0x00, 0x13, 0x37});  // garbage between segments: stb skips it
  std::vector<uint8_t> counts(16, 0);
  for (int left = codes, i = 15; left > 0; --i) {
    counts[size_t(i)] = uint8_t(std::min(left, 255));
    left -= counts[size_t(i)];
    if (i == 0) break;
  }
  const size_t length = 2 + 1 + 16 + size_t(codes);
  j.insert(j.end(), {0xFF, 0xC4, uint8_t(length >> 8), uint8_t(length & 0xFF), 0x10});
  j.insert(j.end(), counts.begin(), counts.end());
  j.insert(j.end(), size_t(codes), uint8_t(0x01));
  j.insert(j.end(), {0xFF, 0xD9});
  return j;
}

}  // namespace

TEST_CASE("a JPEG Huffman table with more than 256 codes is refused before stb_image builds it") {
  // stb_image 2.27 writes past its 257-entry table for such a segment (found by fuzz_image).
  for (int before : {0, 3, -1}) {
    CAPTURE(before);
    std::vector<uint8_t> jpeg = jpeg_with_huffman_codes(300, std::max(before, 0));
    if (before < 0) jpeg.insert(jpeg.begin(), 0xFF);  // a fill byte before SOI: still a JPEG to stb
    try {
      decode_image(jpeg.data(), jpeg.size(), "bad_dht.jpg");
      FAIL("decoded a JPEG with a 300-code Huffman table");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Io);
      CHECK(std::string(e.what()).find("bad_dht.jpg") != std::string::npos);
      CHECK(std::string(e.what()).find("Huffman table declares 300 codes") != std::string::npos);
    }
  }
}

TEST_CASE("a JPEG scan using an undefined Huffman table is refused") {
  // stb_image 2.27 decodes such a scan with whatever its uninitialized decoder memory holds: an
  // assertion failure or out-of-bounds read, depending on the images decoded before (found by
  // fuzz_image).
  const std::vector<uint8_t> jpeg = {
      0xFF, 0xD8,                                                              // SOI
      0xFF, 0xC0, 0x00, 0x0B, 8, 0x00, 0x01, 0x00, 0x01, 1, 1, 0x11, 0,        // SOF0 1x1 gray
      0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 63, 0,                            // SOS: tables 0/0
      0x12, 0x34, 0x56, 0xFF, 0xD9};
  try {
    decode_image(jpeg.data(), jpeg.size(), "no_dht.jpg");
    FAIL("decoded a scan without Huffman tables");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Io);
    CHECK(std::string(e.what()).find("a scan uses a Huffman table that is not defined") != std::string::npos);
  }
}

TEST_CASE("a JPEG with valid Huffman tables passes the table check") {
  // 256 codes is the most a table can hold: the check lets it through to stb, which then fails
  // on the missing frame header, not on the table.
  const std::vector<uint8_t> jpeg = jpeg_with_huffman_codes(256);
  try {
    decode_image(jpeg.data(), jpeg.size(), "no_frame.jpg");
    FAIL("decoded a JPEG without a frame");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("Huffman") == std::string::npos);
  }
  const std::string photo = nibble::testing::asset("images/bus.jpg");
  if (photo.empty()) return;
  const nibble::images::Image image = nibble::images::load_image(photo);
  CHECK(image.width == 810);
  CHECK(image.height == 1080);
}

TEST_CASE("decode_image refuses images over max_pixels before decoding") {
  const std::string photo = nibble::testing::asset("images/bus.jpg");
  if (photo.empty()) {
    MESSAGE("SKIPPED: images/bus.jpg not found (set NIBBLE_ASSETS)");
    return;
  }
  std::string bytes;
  {
    std::FILE* f = std::fopen(photo.c_str(), "rb");
    REQUIRE(f);
    char buffer[65536];
    while (size_t n = std::fread(buffer, 1, sizeof buffer, f)) bytes.append(buffer, n);
    std::fclose(f);
  }
  try {
    decode_image(bytes.data(), bytes.size(), "bus.jpg", 810 * 1080 - 1);
    FAIL("decoded past max_pixels");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Io);
    CHECK(std::string(e.what()).find("810x1080 pixels exceed the limit of 874799") != std::string::npos);
  }
  CHECK(decode_image(bytes.data(), bytes.size(), "bus.jpg", 810 * 1080).width == 810);
}

TEST_CASE("16-bit PGM and PPM decode to the high bytes, gray replicated") {
  // stb_image 2.27 converted a 16-bit PGM's channels with its 8-bit routine and then read past
  // the converted buffer (found by fuzz_image).
  const std::string pgm_header = "P5 4 2\n65535\n";
  std::string pgm = pgm_header;
  for (int i = 0; i < 8; ++i) pgm += {char(i * 30), char(0x11)};  // big-endian samples
  const nibble::images::Image gray = decode_image(pgm.data(), pgm.size(), "gray16.pgm");
  REQUIRE(gray.width == 4);
  REQUIRE(gray.height == 2);
  for (int i = 0; i < 8; ++i) {
    for (int c = 0; c < 3; ++c) CHECK(int(gray.rgb[size_t(i * 3 + c)]) == i * 30);
  }
  std::string ppm = "P6 2 1\n1000\n";
  for (int v : {1, 2, 3, 4, 5, 6}) ppm += {char(v), char(0xFF)};
  const nibble::images::Image color = decode_image(ppm.data(), ppm.size(), "color16.ppm");
  REQUIRE(color.rgb.size() == 6);
  for (int i = 0; i < 6; ++i) CHECK(int(color.rgb[size_t(i)]) == i + 1);
}

TEST_CASE("a PNG chunk longer than the file is refused before stb_image allocates for it") {
  // stb_image grows its IDAT buffer to the declared length before reading: a 2 GiB allocation
  // for a file of a few dozen bytes (found by fuzz_image).
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A,
                              0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 96, 0, 0, 0, 56, 8, 2, 0, 0, 0,
                              0x8D, 0x27, 0x6A, 0xF5,  // CRC (not checked by stb)
                              0x40, 0, 0, 0, 'I', 'D', 'A', 'T', 0x68, 0x05, 0x55};
  try {
    decode_image(png.data(), png.size(), "huge_idat.png");
    FAIL("decoded a PNG whose IDAT chunk declares 1 GiB");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Io);
    CHECK(std::string(e.what()).find("huge_idat.png") != std::string::npos);
    CHECK(std::string(e.what()).find("corrupt PNG (a chunk declares 1073741824 bytes") != std::string::npos);
  }
}
