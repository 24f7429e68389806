// Integer depthwise kernels for AVX-512 without VNNI: vpmaddwd, two taps per lane
// (dwconv_int_avx512.h).
#include "kernels/x86/avx512/dwconv_int_avx512.h"

namespace nibble::kernels::qdw_detail::avx512 {

void dwconv_int_channels(const Call& call, int64_t c_begin, int64_t c_end,
                         const qd::TileEpilogue& epilogue) {
  if (call.flip_sign) return channels<PairsDot, true>(call, c_begin, c_end, epilogue);
  channels<PairsDot, false>(call, c_begin, c_end, epilogue);
}

}  // namespace nibble::kernels::qdw_detail::avx512
