// How the Winograd drivers (winograd_f32.cpp, winograd_i16.cpp) split a convolution into tasks.
#pragma once

#include <algorithm>
#include <cstdint>

namespace nibble::kernels {

// Blocks of tile strips, each block's transformed input and point GEMM results within
// `block_bytes` (L2), so the transforms and the GEMMs hand them over without a trip through L3;
// and, when that leaves a pool of `threads` too few tasks (2 per thread), splits of the output
// channels' `panels` first (they share a block's transformed input), then smaller blocks.
struct WinogradTasks {
  int64_t block_strips, blocks, splits, panels_per_split;

  WinogradTasks(int64_t strips, int64_t strip_bytes, int64_t block_bytes, int64_t panels,
                int64_t threads) {
    auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
    block_strips = std::clamp<int64_t>(block_bytes / strip_bytes, 1, strips);
    blocks = ceil_div(strips, block_strips);
    const int64_t wanted = threads > 1 ? 2 * threads : 1;
    splits = std::min(panels, ceil_div(wanted, blocks));
    if (blocks * splits < wanted) {
      blocks = std::min(strips, ceil_div(wanted, splits));
      block_strips = ceil_div(strips, blocks);
      blocks = ceil_div(strips, block_strips);
    }
    panels_per_split = ceil_div(panels, splits);
  }
};

}  // namespace nibble::kernels
