// Drawing detections onto images for `--save-vis`: box outlines in a per-class color and a
// label with the class name and score, in a built-in 5x7 bitmap font (no font files needed).
#pragma once

#include <string>
#include <vector>

#include "frontend/images/image.h"

namespace nibble::coco {

struct LabeledBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // image pixels
  int class_id = 0;                       // picks the color
  std::string label;                      // e.g. "person 0.91"
};

// Draws the boxes (clipped to the image) in place, best drawn last so it stays on top when the
// caller passes them best first.
void draw_boxes(images::Image& image, const std::vector<LabeledBox>& boxes);

// Writes the image as PNG for a .png path, else as JPEG (quality 90). Throws Error(Io).
void write_image(const images::Image& image, const std::string& path);

}  // namespace nibble::coco
