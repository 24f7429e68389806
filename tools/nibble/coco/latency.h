// Latency statistics over per-image timings, and a terminal progress bar for long runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace nibble::coco {

struct LatencyStats {
  size_t count = 0;
  double mean_ms = 0, median_ms = 0, p90_ms = 0, p99_ms = 0, min_ms = 0, max_ms = 0;
  // Images per second at the mean latency (1000 / mean_ms); 0 without samples.
  double throughput_fps = 0;
};

// Percentiles interpolate linearly between the two nearest samples (numpy's default), so the
// median of an even count is the mean of the middle two.
LatencyStats latency_stats(std::vector<double> milliseconds);

// "[=========>          ] 31/79 images  3.2/s  ETA 0:15" redrawn in place on stderr, at most
// ten times a second. Draws nothing unless stderr is a terminal, so logs and pipes stay clean.
class ProgressBar {
 public:
  ProgressBar(std::string label, size_t total);
  ~ProgressBar();  // ends the line if anything was drawn
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(size_t done);

 private:
  void draw(size_t done);

  std::string label_;
  size_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace nibble::coco
