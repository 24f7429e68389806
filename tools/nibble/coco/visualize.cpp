#include "tools/nibble/coco/visualize.h"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>

#include "nibble/error.h"

namespace nibble::coco {

namespace {

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 7;

// Each glyph is 7 rows of 5 pixels, top to bottom, '#' set. Characters not listed draw as an
// outlined box.
struct Glyph {
  char character;
  const char* rows;
};
constexpr Glyph kFont[] = {
    {' ', ".....|.....|.....|.....|.....|.....|....."},
    {'0', ".###.|#...#|#..##|#.#.#|##..#|#...#|.###."},
    {'1', "..#..|.##..|..#..|..#..|..#..|..#..|.###."},
    {'2', ".###.|#...#|....#|...#.|..#..|.#...|#####"},
    {'3', "#####|...#.|..#..|...#.|....#|#...#|.###."},
    {'4', "...#.|..##.|.#.#.|#..#.|#####|...#.|...#."},
    {'5', "#####|#....|####.|....#|....#|#...#|.###."},
    {'6', "..##.|.#...|#....|####.|#...#|#...#|.###."},
    {'7', "#####|....#|...#.|..#..|.#...|.#...|.#..."},
    {'8', ".###.|#...#|#...#|.###.|#...#|#...#|.###."},
    {'9', ".###.|#...#|#...#|.####|....#|...#.|.##.."},
    {'A', ".###.|#...#|#...#|#####|#...#|#...#|#...#"},
    {'B', "####.|#...#|#...#|####.|#...#|#...#|####."},
    {'C', ".###.|#...#|#....|#....|#....|#...#|.###."},
    {'D', "###..|#..#.|#...#|#...#|#...#|#..#.|###.."},
    {'E', "#####|#....|#....|####.|#....|#....|#####"},
    {'F', "#####|#....|#....|####.|#....|#....|#...."},
    {'G', ".###.|#...#|#....|#.###|#...#|#...#|.####"},
    {'H', "#...#|#...#|#...#|#####|#...#|#...#|#...#"},
    {'I', ".###.|..#..|..#..|..#..|..#..|..#..|.###."},
    {'J', "..###|...#.|...#.|...#.|...#.|#..#.|.##.."},
    {'K', "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#"},
    {'L', "#....|#....|#....|#....|#....|#....|#####"},
    {'M', "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#"},
    {'N', "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#"},
    {'O', ".###.|#...#|#...#|#...#|#...#|#...#|.###."},
    {'P', "####.|#...#|#...#|####.|#....|#....|#...."},
    {'Q', ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#"},
    {'R', "####.|#...#|#...#|####.|#.#..|#..#.|#...#"},
    {'S', ".####|#....|#....|.###.|....#|....#|####."},
    {'T', "#####|..#..|..#..|..#..|..#..|..#..|..#.."},
    {'U', "#...#|#...#|#...#|#...#|#...#|#...#|.###."},
    {'V', "#...#|#...#|#...#|#...#|#...#|.#.#.|..#.."},
    {'W', "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#."},
    {'X', "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#"},
    {'Y', "#...#|#...#|.#.#.|..#..|..#..|..#..|..#.."},
    {'Z', "#####|....#|...#.|..#..|.#...|#....|#####"},
    {'a', ".....|.....|.###.|....#|.####|#...#|.####"},
    {'b', "#....|#....|#.##.|##..#|#...#|#...#|####."},
    {'c', ".....|.....|.###.|#....|#....|#...#|.###."},
    {'d', "....#|....#|.##.#|#..##|#...#|#...#|.####"},
    {'e', ".....|.....|.###.|#...#|#####|#....|.###."},
    {'f', "..##.|.#..#|.#...|###..|.#...|.#...|.#..."},
    {'g', ".....|.####|#...#|#...#|.####|....#|.###."},
    {'h', "#....|#....|#.##.|##..#|#...#|#...#|#...#"},
    {'i', "..#..|.....|.##..|..#..|..#..|..#..|.###."},
    {'j', "...#.|.....|..##.|...#.|...#.|#..#.|.##.."},
    {'k', "#....|#....|#..#.|#.#..|##...|#.#..|#..#."},
    {'l', ".##..|..#..|..#..|..#..|..#..|..#..|.###."},
    {'m', ".....|.....|##.#.|#.#.#|#.#.#|#...#|#...#"},
    {'n', ".....|.....|#.##.|##..#|#...#|#...#|#...#"},
    {'o', ".....|.....|.###.|#...#|#...#|#...#|.###."},
    {'p', ".....|.....|####.|#...#|####.|#....|#...."},
    {'q', ".....|.....|.##.#|#..##|.####|....#|....#"},
    {'r', ".....|.....|#.##.|##..#|#....|#....|#...."},
    {'s', ".....|.....|.###.|#....|.###.|....#|####."},
    {'t', ".#...|.#...|###..|.#...|.#...|.#..#|..##."},
    {'u', ".....|.....|#...#|#...#|#...#|#..##|.##.#"},
    {'v', ".....|.....|#...#|#...#|#...#|.#.#.|..#.."},
    {'w', ".....|.....|#...#|#...#|#.#.#|#.#.#|.#.#."},
    {'x', ".....|.....|#...#|.#.#.|..#..|.#.#.|#...#"},
    {'y', ".....|.....|#...#|#...#|.####|....#|.###."},
    {'z', ".....|.....|#####|...#.|..#..|.#...|#####"},
    {'.', ".....|.....|.....|.....|.....|.##..|.##.."},
    {',', ".....|.....|.....|.....|.##..|..#..|.#..."},
    {'-', ".....|.....|.....|#####|.....|.....|....."},
    {'_', ".....|.....|.....|.....|.....|.....|#####"},
    {':', ".....|.##..|.##..|.....|.##..|.##..|....."},
    {'(', "...#.|..#..|.#...|.#...|.#...|..#..|...#."},
    {')', ".#...|..#..|...#.|...#.|...#.|..#..|.#..."},
    {'/', ".....|....#|...#.|..#..|.#...|#....|....."},
    {'\'', "..#..|..#..|.#...|.....|.....|.....|....."},
    {'%', "##...|##..#|...#.|..#..|.#...|#..##|...##"},
    {'+', ".....|..#..|..#..|#####|..#..|..#..|....."},
    {'!', "..#..|..#..|..#..|..#..|..#..|.....|..#.."},
    {'?', ".###.|#...#|....#|...#.|..#..|.....|..#.."},
    {'&', ".##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#"},
};
constexpr const char* kUnknownGlyph = "#####|#...#|#...#|#...#|#...#|#...#|#####";

// Pixel (x, y) of a glyph's rows string is set.
bool glyph_pixel(const char* rows, int x, int y) {
  return rows[y * (kGlyphWidth + 1) + x] == '#';
}

const char* glyph_rows(char character) {
  static const std::map<char, const char*> glyphs = [] {
    std::map<char, const char*> map;
    for (const Glyph& glyph : kFont) map[glyph.character] = glyph.rows;
    return map;
  }();
  const auto it = glyphs.find(character);
  return it == glyphs.end() ? kUnknownGlyph : it->second;
}

using Color = std::array<uint8_t, 3>;

// Ultralytics' 20-color palette, indexed by class.
Color class_color(int class_id) {
  static constexpr uint32_t kPalette[] = {
      0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17,
      0x3DDB86, 0x1A9334, 0x00D4BB, 0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF,
      0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7};
  constexpr int kColors = sizeof kPalette / sizeof kPalette[0];
  const uint32_t rgb = kPalette[((class_id % kColors) + kColors) % kColors];
  return {static_cast<uint8_t>(rgb >> 16), static_cast<uint8_t>(rgb >> 8),
          static_cast<uint8_t>(rgb)};
}

// Black text on light colors, white on dark ones.
Color text_color(const Color& background) {
  const int luma = (299 * background[0] + 587 * background[1] + 114 * background[2]) / 1000;
  return luma > 150 ? Color{0, 0, 0} : Color{255, 255, 255};
}

class Canvas {
 public:
  explicit Canvas(images::Image& image) : image_(image) {}

  // Fills [x0, x1) x [y0, y1), clipped to the image.
  void fill(int x0, int y0, int x1, int y1, const Color& color) {
    x0 = std::max(x0, 0), y0 = std::max(y0, 0);
    x1 = std::min(x1, image_.width), y1 = std::min(y1, image_.height);
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        uint8_t* pixel = &image_.rgb[(static_cast<size_t>(y) * image_.width + x) * 3];
        std::memcpy(pixel, color.data(), 3);
      }
  }

  void outline(int x0, int y0, int x1, int y1, int thickness, const Color& color) {
    fill(x0, y0, x1, y0 + thickness, color);
    fill(x0, y1 - thickness, x1, y1, color);
    fill(x0, y0, x0 + thickness, y1, color);
    fill(x1 - thickness, y0, x1, y1, color);
  }

  void text(int x, int y, const std::string& text, int scale, const Color& color) {
    for (char character : text) {
      const char* rows = glyph_rows(character);
      for (int gy = 0; gy < kGlyphHeight; ++gy)
        for (int gx = 0; gx < kGlyphWidth; ++gx)
          if (glyph_pixel(rows, gx, gy))
            fill(x + gx * scale, y + gy * scale, x + (gx + 1) * scale, y + (gy + 1) * scale,
                 color);
      x += (kGlyphWidth + 1) * scale;
    }
  }

 private:
  images::Image& image_;
};

}  // namespace

void draw_boxes(images::Image& image, const std::vector<LabeledBox>& boxes) {
  Canvas canvas(image);
  const int shorter_side = std::min(image.width, image.height);
  const int thickness = std::max(1, static_cast<int>(std::lround(shorter_side / 300.0)));
  const int scale = std::max(1, shorter_side / 300);
  const int pad = scale;
  const int label_height = kGlyphHeight * scale + 2 * pad;
  for (auto box = boxes.rbegin(); box != boxes.rend(); ++box) {
    const Color color = class_color(box->class_id);
    const int x0 = static_cast<int>(std::floor(box->x1)), y0 = static_cast<int>(std::floor(box->y1));
    const int x1 = static_cast<int>(std::ceil(box->x2)), y1 = static_cast<int>(std::ceil(box->y2));
    canvas.outline(x0, y0, std::max(x1, x0 + 2 * thickness), std::max(y1, y0 + 2 * thickness),
                   thickness, color);
    const int label_width =
        static_cast<int>(box->label.size()) * (kGlyphWidth + 1) * scale + 2 * pad - scale;
    // Above the box when there is room, else just inside its top edge.
    const int label_top = y0 - label_height >= 0 ? y0 - label_height : std::max(y0, 0);
    const int label_left = std::clamp(x0, 0, std::max(0, image.width - label_width));
    canvas.fill(label_left, label_top, label_left + label_width, label_top + label_height, color);
    canvas.text(label_left + pad, label_top + pad, box->label, scale, text_color(color));
  }
}

void write_image(const images::Image& image, const std::string& path) {
  const bool png = path.size() >= 4 && path.compare(path.size() - 4, 4, ".png") == 0;
  const int ok = png ? stbi_write_png(path.c_str(), image.width, image.height, 3, image.rgb.data(),
                                      image.width * 3)
                     : stbi_write_jpg(path.c_str(), image.width, image.height, 3, image.rgb.data(),
                                      90);
  if (!ok) throw Error(ErrorKind::Io, "cannot write image '" + path + "'");
}

}  // namespace nibble::coco
