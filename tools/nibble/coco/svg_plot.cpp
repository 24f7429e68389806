#include "tools/nibble/coco/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace nibble::coco {

namespace {

constexpr double kWidth = 760, kHeight = 500;
constexpr double kMarginLeft = 80, kMarginTop = 70, kMarginBottom = 60;
constexpr double kLegendWidth = 210;  // right margin for line plots

// matplotlib's tab10: distinct, readable on white.
const char* palette(int index) {
  static const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  constexpr int kCount = sizeof kColors / sizeof kColors[0];
  return kColors[((index % kCount) + kCount) % kCount];
}

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string coordinate(double value) { return format("%.1f", value); }

struct Range {
  double min = 0, max = 1;
};

// The fixed range when given, else the data's range widened by 8% on each side.
Range fit_range(const std::vector<double>& values, double fixed_min, double fixed_max) {
  if (fixed_min < fixed_max) return {fixed_min, fixed_max};
  double low = std::numeric_limits<double>::infinity(), high = -low;
  for (double v : values)
    if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
  if (!std::isfinite(low)) return {0, 1};
  double span = high - low;
  if (span <= 0) span = std::abs(high) > 0 ? std::abs(high) * 0.2 : 1;
  return {low - 0.08 * span, high + 0.08 * span};
}

// 1, 2 or 5 times a power of ten, giving about `target` intervals over the span.
double tick_step(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  const double nice = normalized < 1.5 ? 1 : normalized < 3 ? 2 : normalized < 7 ? 5 : 10;
  return nice * magnitude;
}

std::string tick_label(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, std::abs(value) < step * 1e-6 ? 0.0 : value);
  return text;
}

class Frame {
 public:
  Frame(const PlotAxes& axes, Range x, Range y, double right_margin)
      : axes_(axes), x_(x), y_(y), plot_width_(kWidth - kMarginLeft - right_margin),
        plot_height_(kHeight - kMarginTop - kMarginBottom) {}

  double px(double x) const { return kMarginLeft + (x - x_.min) / (x_.max - x_.min) * plot_width_; }
  double py(double y) const {
    return kMarginTop + (1 - (y - y_.min) / (y_.max - y_.min)) * plot_height_;
  }
  double right() const { return kMarginLeft + plot_width_; }

  std::string begin() const {
    std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + coordinate(kWidth) +
                      "\" height=\"" + coordinate(kHeight) + "\" viewBox=\"0 0 " +
                      coordinate(kWidth) + " " + coordinate(kHeight) +
                      "\" font-family=\"sans-serif\" font-size=\"13\">\n";
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    svg += text(kWidth / 2, 28, axes_.title, "middle", "font-size=\"17\" font-weight=\"bold\"");
    if (!axes_.subtitle.empty())
      svg += text(kWidth / 2, 48, axes_.subtitle, "middle", "fill=\"#555\"");

    const double x_step = tick_step(x_.max - x_.min, 6), y_step = tick_step(y_.max - y_.min, 6);
    for (double x = std::ceil(x_.min / x_step) * x_step; x <= x_.max + x_step * 1e-9; x += x_step) {
      svg += line(px(x), kMarginTop, px(x), kMarginTop + plot_height_, "#e5e5e5");
      svg += text(px(x), kMarginTop + plot_height_ + 18, tick_label(x, x_step), "middle", "");
    }
    for (double y = std::ceil(y_.min / y_step) * y_step; y <= y_.max + y_step * 1e-9; y += y_step) {
      svg += line(kMarginLeft, py(y), right(), py(y), "#e5e5e5");
      svg += text(kMarginLeft - 8, py(y) + 4, tick_label(y, y_step), "end", "");
    }
    svg += "<rect x=\"" + coordinate(kMarginLeft) + "\" y=\"" + coordinate(kMarginTop) +
           "\" width=\"" + coordinate(plot_width_) + "\" height=\"" + coordinate(plot_height_) +
           "\" fill=\"none\" stroke=\"#333\"/>\n";
    svg += text(kMarginLeft + plot_width_ / 2, kHeight - 16, axes_.x_label, "middle", "");
    const double y_middle = kMarginTop + plot_height_ / 2;
    svg += text(20, y_middle, axes_.y_label, "middle",
                "transform=\"rotate(-90 20 " + coordinate(y_middle) + ")\"");
    return svg;
  }

  static std::string text(double x, double y, const std::string& content, const char* anchor,
                          const std::string& extra) {
    return "<text x=\"" + coordinate(x) + "\" y=\"" + coordinate(y) + "\" text-anchor=\"" +
           anchor + "\"" + (extra.empty() ? "" : " " + extra) + ">" + xml_escape(content) +
           "</text>\n";
  }

  static std::string line(double x1, double y1, double x2, double y2, const char* color) {
    return "<line x1=\"" + coordinate(x1) + "\" y1=\"" + coordinate(y1) + "\" x2=\"" +
           coordinate(x2) + "\" y2=\"" + coordinate(y2) + "\" stroke=\"" + color + "\"/>\n";
  }

 private:
  const PlotAxes& axes_;
  Range x_, y_;
  double plot_width_, plot_height_;
};

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string escaped;
  for (char c : text) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      case '"': escaped += "&quot;"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

std::string scatter_svg(const PlotAxes& axes, const std::vector<ScatterPoint>& points) {
  std::vector<double> xs, ys;
  for (const ScatterPoint& p : points) xs.push_back(p.x), ys.push_back(p.y);
  const Frame frame(axes, fit_range(xs, axes.x_min, axes.x_max),
                    fit_range(ys, axes.y_min, axes.y_max), 40);
  std::string svg = frame.begin();
  for (size_t i = 0; i < points.size(); ++i)
    svg += "<circle cx=\"" + coordinate(frame.px(points[i].x)) + "\" cy=\"" +
           coordinate(frame.py(points[i].y)) + "\" r=\"6\" fill=\"" +
           palette(static_cast<int>(i)) + "\" stroke=\"#222\"/>\n";

  // Labels go above-right, below-right, above-left or below-left of their point: the first
  // place that stays inside the plot and overlaps the fewest points and earlier labels.
  struct Rect {
    double left, top, right, bottom;
    bool overlaps(const Rect& o) const {
      return left < o.right && o.left < right && top < o.bottom && o.top < bottom;
    }
  };
  constexpr double kCharWidth = 7.2, kTextHeight = 14;  // 13 px sans-serif, roughly
  std::vector<Rect> placed;  // the points themselves, then each label placed
  for (const ScatterPoint& point : points) {
    const double x = frame.px(point.x), y = frame.py(point.y);
    placed.push_back({x - 6, y - 6, x + 6, y + 6});
  }
  for (size_t i = 0; i < points.size(); ++i) {
    const ScatterPoint& point = points[i];
    const double x = frame.px(point.x), y = frame.py(point.y);
    const double width = kCharWidth * static_cast<double>(point.label.size());
    struct Option {
      double dx, dy;
      bool left;
    };
    const Option options[] = {{10, -9, false}, {10, 19, false}, {-10, -9, true}, {-10, 19, true}};
    const Option* chosen = &options[0];
    size_t best_cost = SIZE_MAX;
    for (const Option& option : options) {
      const double text_left = option.left ? x + option.dx - width : x + option.dx;
      const Rect rect{text_left, y + option.dy - kTextHeight + 3, text_left + width,
                      y + option.dy + 3};
      const bool inside = rect.left >= kMarginLeft && rect.right <= frame.right() &&
                          rect.top >= kMarginTop;
      size_t cost = inside ? 0 : 100;
      for (const Rect& other : placed) cost += rect.overlaps(other) ? 1 : 0;
      if (cost < best_cost) best_cost = cost, chosen = &option;
    }
    const double text_left = chosen->left ? x + chosen->dx - width : x + chosen->dx;
    placed.push_back({text_left, y + chosen->dy - kTextHeight + 3, text_left + width,
                      y + chosen->dy + 3});
    // In the point's color, so a label next to another point still reads as its own.
    svg += Frame::text(x + chosen->dx, y + chosen->dy, point.label, chosen->left ? "end" : "start",
                       std::string("fill=\"") + palette(static_cast<int>(i)) + "\"");
  }
  return svg + "</svg>\n";
}

std::string lines_svg(const PlotAxes& axes, const std::vector<LineSeries>& series) {
  std::vector<double> xs, ys;
  for (const LineSeries& s : series) {
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  const Frame frame(axes, fit_range(xs, axes.x_min, axes.x_max),
                    fit_range(ys, axes.y_min, axes.y_max), kLegendWidth);
  std::string svg = frame.begin();
  double legend_y = kMarginTop + 12;
  for (const LineSeries& s : series) {
    std::string points;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
        points += coordinate(frame.px(s.x[i])) + "," + coordinate(frame.py(s.y[i])) + " ";
    const std::string style = std::string("fill=\"none\" stroke=\"") + palette(s.color) +
                              "\" stroke-width=\"2\"" +
                              (s.dashed ? " stroke-dasharray=\"7 4\"" : "");
    svg += "<polyline " + style + " points=\"" + points + "\"/>\n";
    if (s.label.empty()) continue;
    const double x = frame.right() + 16;
    svg += "<line x1=\"" + coordinate(x) + "\" y1=\"" + coordinate(legend_y) + "\" x2=\"" +
           coordinate(x + 28) + "\" y2=\"" + coordinate(legend_y) + "\" " + style + "/>\n";
    svg += Frame::text(x + 36, legend_y + 4, s.label, "start", "");
    legend_y += 22;
  }
  return svg + "</svg>\n";
}

}  // namespace nibble::coco
