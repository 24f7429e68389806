// Small self-contained SVG charts (scatter and line plots with axes, ticks and a legend) for the
// reports, written as text so no plotting library is needed.
#pragma once

#include <string>
#include <vector>

namespace nibble::coco {

struct PlotAxes {
  std::string title;
  std::string subtitle;  // optional second line under the title
  std::string x_label, y_label;
  // Fixed ranges; when min >= max the range is fitted to the data with a margin.
  double x_min = 0, x_max = 0, y_min = 0, y_max = 0;
};

struct ScatterPoint {
  std::string label;  // written next to the point
  double x = 0, y = 0;
};

struct LineSeries {
  std::string label;  // legend entry; empty: not in the legend
  std::vector<double> x, y;
  int color = 0;  // index into the palette; series of one model share it
  bool dashed = false;
};

std::string scatter_svg(const PlotAxes& axes, const std::vector<ScatterPoint>& points);
std::string lines_svg(const PlotAxes& axes, const std::vector<LineSeries>& series);

// "1 < 2 & 3" -> "1 &lt; 2 &amp; 3", for text inside SVG/XML.
std::string xml_escape(const std::string& text);

}  // namespace nibble::coco
