#include "tools/nibble/coco/latency.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace nibble::coco {

namespace {

// np.percentile(values, q) with the default 'linear' method; `sorted` is ascending.
double percentile(const std::vector<double>& sorted, double q) {
  const double position = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + (sorted[above] - sorted[below]) * fraction;
}

std::string clock_text(double seconds) {
  const auto total = static_cast<long>(std::lround(std::max(0.0, seconds)));
  char text[32];
  if (total >= 3600)
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  return text;
}

}  // namespace

LatencyStats latency_stats(std::vector<double> milliseconds) {
  LatencyStats stats;
  stats.count = milliseconds.size();
  if (milliseconds.empty()) return stats;
  std::sort(milliseconds.begin(), milliseconds.end());
  stats.mean_ms = std::accumulate(milliseconds.begin(), milliseconds.end(), 0.0) /
                  static_cast<double>(milliseconds.size());
  stats.median_ms = percentile(milliseconds, 50);
  stats.p90_ms = percentile(milliseconds, 90);
  stats.p99_ms = percentile(milliseconds, 99);
  stats.min_ms = milliseconds.front();
  stats.max_ms = milliseconds.back();
  stats.throughput_fps = stats.mean_ms > 0 ? 1000.0 / stats.mean_ms : 0;
  return stats;
}

ProgressBar::ProgressBar(std::string label, size_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(total > 0 && isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressBar::update(size_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(done);
}

void ProgressBar::draw(size_t done) {
  constexpr size_t kWidth = 28;
  const double elapsed = std::chrono::duration<double>(last_draw_ - start_).count();
  const size_t filled = kWidth * std::min(done, total_) / total_;
  std::string bar(kWidth, ' ');
  std::fill_n(bar.begin(), filled, '=');
  if (filled < kWidth && done > 0) bar[filled] = '>';
  std::string rate = "   -/s", eta = "ETA -:--";
  if (done > 0 && elapsed > 0) {
    const double per_second = static_cast<double>(done) / elapsed;
    char text[32];
    std::snprintf(text, sizeof text, "%5.1f/s", per_second);
    rate = text;
    eta = done < total_ ? "ETA " + clock_text(static_cast<double>(total_ - done) / per_second)
                        : "in " + clock_text(elapsed);
  }
  // \r and the clear-to-end-of-line code redraw the same terminal line.
  std::fprintf(stderr, "\r%s [%s] %zu/%zu %s  %s\033[K", label_.c_str(), bar.c_str(), done, total_,
               rate.c_str(), eta.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace nibble::coco
