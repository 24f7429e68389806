// The AVX2 low-bit GEMM kernel sets (tile kernel, its register tile and K block, and how weight
// panels are expanded for it), as chosen by gemm_int_dispatch.cpp.
#include "kernels/x86/avx2/gemm_int_common_avx2.h"

namespace nibble::kernels::qgemm_detail::avx2 {

void tile_w4a8_3x16(const Tile& t, const TileEpilogue& ep);
void tile_w8a8_split_3x16(const Tile& t, const TileEpilogue& ep);
void tile_a16i16_6x16(const Tile& t, const TileEpilogue& ep);

namespace {

// K blocks: a prepared panel slice stays in L1 (3 rows x 2048 x 2 int8 halves = 12 KiB,
// 6 x 1024 int16) while B strips stream from L2.
constexpr int64_t kKcA8 = 2048, kKcA16I16 = 1024;

// clang-format off
const KernelSet kW8A8     {"w8a8 3x16 avx2", QuantMode::A8, 8, Isa::Avx2, 3, 16, 4, kKcA8, PanelType::S8Split, prepare_s8_split, tile_w8a8_split_3x16, nullptr};
const KernelSet kW4A8     {"w4a8 3x16 avx2", QuantMode::A8, 4, Isa::Avx2, 3, 16, 4, kKcA8, PanelType::S8, prepare_s8, tile_w4a8_3x16, nullptr};
const KernelSet kW8A16i16 {"w8a16i16 6x16 avx2", QuantMode::A16I16, 8, Isa::Avx2, 6, 16, 2, kKcA16I16, PanelType::S16, prepare_s16, tile_a16i16_6x16, nullptr};
const KernelSet kW4A16i16 {"w4a16i16 6x16 avx2", QuantMode::A16I16, 4, Isa::Avx2, 6, 16, 2, kKcA16I16, PanelType::S16, prepare_s16, tile_a16i16_6x16, nullptr};
// clang-format on

}  // namespace

const KernelSet* kernel_set(QuantMode mode, int bits) {
  const bool int4 = bits == 4;
  switch (mode) {
    case QuantMode::A8:
      return int4 ? &kW4A8 : &kW8A8;
    case QuantMode::A16:  // weight-only float: the FP32 micro-kernels (gemm_a16_f32.h)
      return nullptr;
    case QuantMode::A16I16:
      return int4 ? &kW4A16i16 : &kW8A16i16;
  }
  return nullptr;
}

}  // namespace nibble::kernels::qgemm_detail::avx2
