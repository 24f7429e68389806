// Integer depthwise kernels for AVX512-VNNI: vpdpbusd, four taps per lane (dwconv_int_avx512.h).
#include "kernels/x86/avx512/vnni_target.h"

#define NIBBLE_DWCONV_TARGET NIBBLE_TARGET_VNNI
#include "kernels/x86/avx512/dwconv_int_avx512.h"

namespace nibble::kernels::qdw_detail::avx512 {

void dwconv_int_channels_vnni(const Call& call, int64_t c_begin, int64_t c_end,
                              const qd::TileEpilogue& epilogue) {
  if (call.flip_sign) return channels<VnniDot, true>(call, c_begin, c_end, epilogue);
  channels<VnniDot, false>(call, c_begin, c_end, epilogue);
}

}  // namespace nibble::kernels::qdw_detail::avx512
