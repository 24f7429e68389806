// The AVX-512 low-bit GEMM kernel sets (tile kernel, its register tile and K block, and how
// weight panels are expanded for it), as chosen by gemm_int_dispatch.cpp.
#include "kernels/x86/avx512/gemm_int_common_avx512.h"

namespace nibble::kernels::qgemm_detail::avx512 {

void tile_a8_8x48_vnni(const Tile& t, const TileEpilogue& ep);
void flush_a8_8x48_vnni(PendingEpilogue& pending, const TileEpilogue& ep);
void tile_w4a8_4x48(const Tile& t, const TileEpilogue& ep);
void tile_w8a8_split_4x48(const Tile& t, const TileEpilogue& ep);
void tile_a16i16_8x48(const Tile& t, const TileEpilogue& ep);
void tile_a16i16_8x48_vnni(const Tile& t, const TileEpilogue& ep);

namespace {

// K blocks: a prepared panel slice stays in L1 or close (8 rows x 2048 int8 = 16 KiB, 8 x 1024
// int16 = 16 KiB) while B streams from L2.
constexpr int64_t kKcA8 = 2048, kKcA16I16 = 1024;
// The VNNI tile's K loop is short per K unit (one vpdpbusd per 64 products), so the fixed cost
// of a K block (partial sums out and back) shows: on convolutions, whose prepared panels stream
// from L2 anyway, one K block up to the driver's budget for them ran 5-9% faster on yolov10m's
// 1152- and 3456-deep layers than blocks of 2048. (Plain GEMMs are held to their L2 budget for
// B by the driver.)
constexpr int64_t kKcA8Vnni = 8192;

// The A8 tiles skip a convolution grid's dropped columns themselves (drops_columns, last field).
// clang-format off
const KernelSet kW8A8Vnni   {"w8a8 8x48 avx512vnni", QuantMode::A8, 8, Isa::Avx512Vnni, 8, 48, 4, kKcA8Vnni, PanelType::S8, prepare_s8, tile_a8_8x48_vnni, flush_a8_8x48_vnni, true};
const KernelSet kW4A8Vnni   {"w4a8 8x48 avx512vnni", QuantMode::A8, 4, Isa::Avx512Vnni, 8, 48, 4, kKcA8Vnni, PanelType::S8, prepare_s8, tile_a8_8x48_vnni, flush_a8_8x48_vnni, true};
const KernelSet kW8A8       {"w8a8 4x48 avx512", QuantMode::A8, 8, Isa::Avx512, 4, 48, 4, kKcA8, PanelType::S8Split, prepare_s8_split, tile_w8a8_split_4x48, nullptr, true};
const KernelSet kW4A8       {"w4a8 4x48 avx512", QuantMode::A8, 4, Isa::Avx512, 4, 48, 4, kKcA8, PanelType::S8, prepare_s8, tile_w4a8_4x48, nullptr, true};
const KernelSet kW8A16i16   {"w8a16i16 8x48 avx512", QuantMode::A16I16, 8, Isa::Avx512, 8, 48, 2, kKcA16I16, PanelType::S16, prepare_s16, tile_a16i16_8x48, nullptr};
const KernelSet kW4A16i16   {"w4a16i16 8x48 avx512", QuantMode::A16I16, 4, Isa::Avx512, 8, 48, 2, kKcA16I16, PanelType::S16, prepare_s16, tile_a16i16_8x48, nullptr};
const KernelSet kW8A16i16Vnni{"w8a16i16 8x48 avx512vnni", QuantMode::A16I16, 8, Isa::Avx512Vnni, 8, 48, 2, kKcA16I16, PanelType::S16, prepare_s16, tile_a16i16_8x48_vnni, nullptr};
const KernelSet kW4A16i16Vnni{"w4a16i16 8x48 avx512vnni", QuantMode::A16I16, 4, Isa::Avx512Vnni, 8, 48, 2, kKcA16I16, PanelType::S16, prepare_s16, tile_a16i16_8x48_vnni, nullptr};
// clang-format on

}  // namespace

const KernelSet* kernel_set(QuantMode mode, int bits, bool vnni) {
  const bool int4 = bits == 4;
  switch (mode) {
    case QuantMode::A8:
      if (vnni) return int4 ? &kW4A8Vnni : &kW8A8Vnni;
      return int4 ? &kW4A8 : &kW8A8;
    case QuantMode::A16:  // weight-only float: the FP32 micro-kernels (gemm_a16_f32.h)
      return nullptr;
    case QuantMode::A16I16:
      if (vnni) return int4 ? &kW4A16i16Vnni : &kW8A16i16Vnni;
      return int4 ? &kW4A16i16 : &kW8A16i16;
  }
  return nullptr;
}

}  // namespace nibble::kernels::qgemm_detail::avx512
