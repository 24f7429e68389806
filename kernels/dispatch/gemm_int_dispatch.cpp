// Low-bit GEMM driver (kernels/gemm_int.h): kernel choice per ISA, weight packing, B packing
// (im2col, interleaving, int16 quantization) and the cache blocking described in
// gemm_int_kernels.h. The arithmetic lives in the per-ISA tile kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/dispatch/gemm_int_kernels.h"
#include "kernels/gemm_int.h"
#include "nibble/error.h"

namespace nibble::kernels {
namespace qd = qgemm_detail;

namespace {

constexpr int64_t kL2Budget = 320 * 1024;  // bytes of packed B per block (L2 is >= 512 KiB)
constexpr int64_t kMaxA8Depth = 65536;     // |sum| <= K * 128 * 255 must fit int32

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorKind::InvalidArgument, "qgemm: " + message);
}

// The best kernel set of ISA level <= isa, or null for the reference path.
const qd::KernelSet* find_kernel_set(QuantMode mode, int bits, Isa isa) {
  const qd::KernelSet* set = nullptr;
#if defined(__x86_64__)
  if (isa >= Isa::Avx512Vnni) set = qd::avx512::kernel_set(mode, bits, /*vnni=*/true);
  if (!set && isa >= Isa::Avx512) set = qd::avx512::kernel_set(mode, bits, /*vnni=*/false);
  if (!set && isa >= Isa::Avx2) set = qd::avx2::kernel_set(mode, bits);
#else
  (void)mode, (void)bits, (void)isa;
#endif
  return set;
}

// Stores value v (already range-checked) of a panel at flat index i.
void put_value(uint8_t* panel, int bits, int64_t i, int8_t v) {
  if (bits == 8) {
    panel[i] = static_cast<uint8_t>(v);
    return;
  }
  const int64_t run = i / 64, j = i % 64;
  uint8_t& byte = panel[run * 32 + j % 32];
  const uint8_t nibble = static_cast<uint8_t>(v) & 0x0F;
  byte = j < 32 ? static_cast<uint8_t>((byte & 0xF0) | nibble)
                : static_cast<uint8_t>((byte & 0x0F) | (nibble << 4));
}

// ---- B packing -----------------------------------------------------------------------------

struct Scratch {
  AlignedBuffer<uint8_t> gathered;   // im2col / strided rows, [kb][ncb] of the source type
  AlignedBuffer<uint8_t> zero_row;   // stands in for rows past the block's depth
  AlignedBuffer<uint8_t> b_packed;
  AlignedBuffer<uint8_t> a_prepared;
  AlignedBuffer<uint8_t> partial;
  AlignedBuffer<uint8_t> tile_out;   // one tile, for outputs with a column stride
  AlignedBuffer<int8_t> ref_weights;
  std::vector<const uint8_t*> rows, strip_rows;
  std::vector<float> scale, bias;
  std::vector<int32_t> comp;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

size_t type_bytes(QType t) { return t == QType::U8 || t == QType::S8 ? 1 : 4; }

// Copies columns [n0, n0 + ncb) of im2col rows [k0, k0 + kb) of a convolution source into
// dst ([kb][ncb], element type T), padding with `pad`.
template <typename T>
void gather_im2col(const ref::ConvGeometry& g, const T* image, T pad, int64_t k0, int64_t kb,
                   int64_t n0, int64_t ncb, T* dst) {
  const int64_t taps = g.kernel_size();
  for (int64_t r = 0; r < kb; ++r) {
    const int64_t k = k0 + r;
    const int64_t c = k / taps, t = k % taps;
    const int64_t t0 = t / (g.kernel[1] * g.kernel[2]), t1 = (t / g.kernel[2]) % g.kernel[1],
                  t2 = t % g.kernel[2];
    const T* plane = image + c * g.in_size();
    T* out = dst + r * ncb;
    int64_t n = n0;
    while (n < n0 + ncb) {
      // One run of output positions along the last axis.
      const int64_t o2 = n % g.out[2], o1 = (n / g.out[2]) % g.out[1],
                    o0 = n / (g.out[1] * g.out[2]);
      const int64_t len = std::min(g.out[2] - o2, n0 + ncb - n);
      T* o = out + (n - n0);
      const int64_t i0 = o0 * g.stride[0] - g.pad[0] + t0 * g.dilation[0];
      const int64_t i1 = o1 * g.stride[1] - g.pad[1] + t1 * g.dilation[1];
      if (i0 < 0 || i0 >= g.in[0] || i1 < 0 || i1 >= g.in[1]) {
        std::fill(o, o + len, pad);
      } else {
        const T* src_row = plane + (i0 * g.in[1] + i1) * g.in[2];
        const int64_t s2 = g.stride[2], base = -g.pad[2] + t2 * g.dilation[2];
        // Output positions j in [0, len) read input o2 + j at (o2 + j) * s2 + base.
        int64_t lo = 0, hi = len;  // the ones inside the row
        while (lo < len && (o2 + lo) * s2 + base < 0) ++lo;
        while (hi > lo && (o2 + hi - 1) * s2 + base >= g.in[2]) --hi;
        std::fill(o, o + lo, pad);
        const T* src = src_row + (o2 + lo) * s2 + base;
        if (s2 == 1) {
          std::memcpy(o + lo, src, size_t(hi - lo) * sizeof(T));
        } else {
          for (int64_t j = lo; j < hi; ++j) o[j] = src[(j - lo) * s2];
        }
        std::fill(o + hi, o + len, pad);
      }
      n += len;
    }
  }
}

// Sets s.rows to kb row pointers, each addressing ncb consecutive source elements: straight
// into the source when its columns are contiguous, else into a gathered copy.
void source_rows(const QSource& b, int64_t k0, int64_t kb, int64_t n0, int64_t ncb, Scratch& s) {
  const size_t eb = type_bytes(b.type);
  const uint8_t* base = static_cast<const uint8_t*>(b.data);
  s.rows.resize(size_t(kb));
  const bool pointwise = b.conv != nullptr && b.conv->is_pointwise();
  if ((b.conv == nullptr && b.col_stride == 1) || pointwise) {
    const int64_t row_stride = pointwise ? b.conv->in_size() : b.row_stride;
    for (int64_t r = 0; r < kb; ++r) s.rows[size_t(r)] = base + ((k0 + r) * row_stride + n0) * eb;
    return;
  }
  uint8_t* dst = s.gathered.ensure(size_t(kb * ncb) * eb);
  if (b.conv != nullptr) {
    switch (b.type) {
      case QType::U8:
        gather_im2col(*b.conv, base, static_cast<uint8_t>(b.zero_point), k0, kb, n0, ncb, dst);
        break;
      case QType::S8:
        gather_im2col(*b.conv, reinterpret_cast<const int8_t*>(base),
                      static_cast<int8_t>(b.zero_point), k0, kb, n0, ncb,
                      reinterpret_cast<int8_t*>(dst));
        break;
      default:
        gather_im2col(*b.conv, reinterpret_cast<const float*>(base), 0.0f, k0, kb, n0, ncb,
                      reinterpret_cast<float*>(dst));
        break;
    }
  } else {
    for (int64_t r = 0; r < kb; ++r) {
      for (int64_t j = 0; j < ncb; ++j) {
        std::memcpy(dst + size_t(r * ncb + j) * eb,
                    base + size_t((k0 + r) * b.row_stride + (n0 + j) * b.col_stride) * eb, eb);
      }
    }
  }
  for (int64_t r = 0; r < kb; ++r) s.rows[size_t(r)] = dst + size_t(r * ncb) * eb;
}

// uint8 quads: strip[q][j][i] = row(4q + i)[j] ^ flip (flip = 0x80 turns int8 into uint8).
void interleave_u8(const uint8_t* const* rows, int64_t quads, int64_t cols, int64_t nr,
                   uint8_t flip, uint8_t* strip) {
  for (int64_t q = 0; q < quads; ++q) {
    const uint8_t* r0 = rows[4 * q];
    const uint8_t* r1 = rows[4 * q + 1];
    const uint8_t* r2 = rows[4 * q + 2];
    const uint8_t* r3 = rows[4 * q + 3];
    uint8_t* out = strip + q * nr * 4;
    int64_t j = 0;
#if defined(__SSE2__)
    const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
    for (; j + 16 <= cols; j += 16) {
      const __m128i a = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + j)), f);
      const __m128i b = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + j)), f);
      const __m128i c = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r2 + j)), f);
      const __m128i d = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r3 + j)), f);
      const __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
      const __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
      __m128i* o = reinterpret_cast<__m128i*>(out + j * 4);
      _mm_storeu_si128(o + 0, _mm_unpacklo_epi16(ab_lo, cd_lo));
      _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab_lo, cd_lo));
      _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab_hi, cd_hi));
      _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab_hi, cd_hi));
    }
#endif
    for (; j < cols; ++j) {
      out[j * 4 + 0] = r0[j] ^ flip;
      out[j * 4 + 1] = r1[j] ^ flip;
      out[j * 4 + 2] = r2[j] ^ flip;
      out[j * 4 + 3] = r3[j] ^ flip;
    }
    std::memset(out + cols * 4, 0, size_t((nr - cols) * 4));
  }
}

// int16 pairs: strip[p][j][i] = quantize(row(2p + i)[j]).
void interleave_s16(const float* const* rows, int64_t pairs, int64_t cols, int64_t nr,
                    const Int16Quantization& q, int16_t* strip) {
  const float qmax = static_cast<float>(q.qmax);
  for (int64_t p = 0; p < pairs; ++p) {
    const float* r0 = rows[2 * p];
    const float* r1 = rows[2 * p + 1];
    int16_t* out = strip + p * nr * 2;
    int64_t j = 0;
#if defined(__SSE2__)
    const __m128 inv = _mm_set1_ps(q.inv_scale), hi = _mm_set1_ps(qmax), lo = _mm_set1_ps(-qmax);
    const __m128i low16 = _mm_set1_epi32(0xFFFF);
    for (; j + 4 <= cols; j += 4) {
      const __m128 t0 = _mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_loadu_ps(r0 + j), inv), lo), hi);
      const __m128 t1 = _mm_min_ps(_mm_max_ps(_mm_mul_ps(_mm_loadu_ps(r1 + j), inv), lo), hi);
      const __m128i pair = _mm_or_si128(_mm_and_si128(_mm_cvtps_epi32(t0), low16),
                                        _mm_slli_epi32(_mm_cvtps_epi32(t1), 16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j * 2), pair);
    }
#endif
    for (; j < cols; ++j) {
      out[j * 2 + 0] = static_cast<int16_t>(
          std::nearbyint(std::min(std::max(r0[j] * q.inv_scale, -qmax), qmax)));
      out[j * 2 + 1] = static_cast<int16_t>(
          std::nearbyint(std::min(std::max(r1[j] * q.inv_scale, -qmax), qmax)));
    }
    std::memset(out + cols * 2, 0, size_t((nr - cols) * 2) * sizeof(int16_t));
  }
}

void copy_f32(const float* const* rows, int64_t depth, int64_t cols, int64_t nr, float* strip) {
  for (int64_t k = 0; k < depth; ++k) {
    float* out = strip + k * nr;
    std::memcpy(out, rows[k], size_t(cols) * sizeof(float));
    std::memset(out + cols, 0, size_t(nr - cols) * sizeof(float));
  }
}

// Packs rows [k0, k0 + kb) x columns [n0, n0 + ncb) of B into strips of the kernel's layout.
void pack_b_block(const qd::KernelSet& ks, const QSource& b, const Int16Quantization& q16,
                  int64_t k0, int64_t kb, int64_t n0, int64_t ncb, Scratch& s, uint8_t* packed) {
  source_rows(b, k0, kb, n0, ncb, s);
  const int64_t ku = ks.k_unit, kb_pad = round_up(kb, ku), nr = ks.nr;
  const size_t eb = type_bytes(b.type);
  // Rows past the block's depth read zeros.
  const uint8_t* zeros = s.zero_row.ensure(size_t(ncb) * eb);
  const size_t strip_bytes = size_t(nr * kb_pad) * (ks.mode == QuantMode::A8 ? 1
                                                    : ks.mode == QuantMode::A16 ? 4
                                                                                : 2);
  std::vector<const uint8_t*>& strip_rows = s.strip_rows;
  strip_rows.resize(size_t(kb_pad));
  for (int64_t j0 = 0, strip = 0; j0 < ncb; j0 += nr, ++strip) {
    const int64_t cols = std::min(nr, ncb - j0);
    for (int64_t r = 0; r < kb_pad; ++r) {
      // The zero row has only ncb elements; padded rows never read past `cols` of it.
      strip_rows[size_t(r)] = r < kb ? s.rows[size_t(r)] + size_t(j0) * eb : zeros;
    }
    uint8_t* out = packed + size_t(strip) * strip_bytes;
    switch (ks.mode) {
      case QuantMode::A8:
        interleave_u8(strip_rows.data(), kb_pad / 4, cols, nr, b.type == QType::S8 ? 0x80 : 0,
                      out);
        break;
      case QuantMode::A16:
        copy_f32(reinterpret_cast<const float* const*>(strip_rows.data()), kb_pad, cols, nr,
                 reinterpret_cast<float*>(out));
        break;
      case QuantMode::A16I16:
        interleave_s16(reinterpret_cast<const float* const*>(strip_rows.data()), kb_pad / 2, cols,
                       nr, q16, reinterpret_cast<int16_t*>(out));
        break;
    }
  }
}

void check_types(QuantMode mode, const QSource& b, const QOutput& out) {
  const bool integer_source = b.type == QType::U8 || b.type == QType::S8;
  if (mode == QuantMode::A8 && !integer_source) {
    invalid("mode A8 (w8a8/w4a8) takes uint8 or int8 activations");
  }
  if (mode != QuantMode::A8 && b.type != QType::F32) {
    invalid("weight-only modes (a16, a16i16) take float activations");
  }
  if (mode == QuantMode::A16 && out.type == QType::I32) {
    invalid("mode A16 has no integer sums to output as int32");
  }
  if (b.type == QType::U8 && (b.zero_point < 0 || b.zero_point > 255)) {
    invalid("uint8 activation zero point " + std::to_string(b.zero_point) + " outside [0, 255]");
  }
  if (b.type == QType::S8 && (b.zero_point < -128 || b.zero_point > 127)) {
    invalid("int8 activation zero point " + std::to_string(b.zero_point) +
            " outside [-128, 127]");
  }
  if ((out.type == QType::U8 || out.type == QType::S8) &&
      !(std::isfinite(out.scale) && out.scale > 0)) {
    invalid("output scale must be finite and positive");
  }
}

}  // namespace

std::string qgemm_kind_name(QuantMode mode, int weight_bits) {
  const std::string w = "w" + std::to_string(weight_bits);
  switch (mode) {
    case QuantMode::A8: return w + "a8";
    case QuantMode::A16: return w + "a16";
    case QuantMode::A16I16: return w + "a16i16";
  }
  return w;
}

size_t PackedQWeights::packed_bytes() const {
  return data.size() + scales.size() * sizeof(float) + row_sums.size() * sizeof(int32_t);
}

Int16Quantization int16_quantization(int64_t depth, int32_t weight_max_abs, float abs_max) {
  Int16Quantization q;
  const int64_t worst = std::max<int64_t>(1, depth) * std::max<int32_t>(1, weight_max_abs);
  q.qmax = static_cast<int32_t>(std::min<int64_t>(32767, std::numeric_limits<int32_t>::max() / worst));
  q.qmax = std::max(q.qmax, 1);
  if (std::isfinite(abs_max) && abs_max > 0) {
    q.scale = abs_max / static_cast<float>(q.qmax);
    q.inv_scale = 1.0f / q.scale;
  }
  return q;
}

float qgemm_abs_max(const float* x, int64_t count) {
  float m = 0.0f;
  for (int64_t i = 0; i < count; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

PackedQWeights pack_qweights(QuantMode mode, int bits, int64_t rows, int64_t depth,
                             const int8_t* w, int64_t w_row_stride, const float* scales,
                             bool per_channel, Isa isa) {
  if (bits != 4 && bits != 8) invalid("weights must have 4 or 8 bits, not " + std::to_string(bits));
  if (rows <= 0 || depth <= 0) {
    invalid("weight matrix " + std::to_string(rows) + " x " + std::to_string(depth) +
            " is empty");
  }
  if (mode == QuantMode::A8 && depth > kMaxA8Depth) {
    invalid("depth " + std::to_string(depth) + " exceeds " + std::to_string(kMaxA8Depth) +
            " (int32 sums of w8a8/w4a8 could overflow)");
  }
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
    invalid(std::string("this CPU has no ") + isa_name(isa));
  }
  PackedQWeights p;
  p.mode = mode;
  p.bits = bits;
  p.rows = rows;
  p.depth = depth;
  p.scales.resize(size_t(rows));
  p.row_sums.assign(size_t(rows), 0);
  for (int64_t m = 0; m < rows; ++m) {
    const float s = scales[per_channel ? m : 0];
    if (!(std::isfinite(s) && s > 0)) {
      invalid("weight scale of row " + std::to_string(m) + " is not finite and positive");
    }
    p.scales[size_t(m)] = s;
    for (int64_t k = 0; k < depth; ++k) {
      const int32_t v = w[m * w_row_stride + k];
      if (bits == 4 && (v < -8 || v > 7)) {
        invalid("int4 weight " + std::to_string(v) + " at row " + std::to_string(m) +
                ", column " + std::to_string(k) + " is outside [-8, 7]");
      }
      p.row_sums[size_t(m)] += v;
      p.max_abs = std::max(p.max_abs, std::abs(v));
    }
  }

  const qd::KernelSet* ks = find_kernel_set(mode, bits, isa);
  if (ks == nullptr) {
    // Reference layout: rows of `depth` values (64-value nibble runs at 4 bits), row-major.
    p.isa = Isa::Ref;
    p.kernel = qgemm_kind_name(mode, bits) + " ref";
    const int64_t row_values = round_up(depth, 64);
    p.data.resize(size_t(rows * row_values * bits / 8));
    for (int64_t m = 0; m < rows; ++m) {
      for (int64_t k = 0; k < depth; ++k) {
        put_value(p.data.data(), bits, m * row_values + k, w[m * w_row_stride + k]);
      }
    }
    return p;
  }
  p.isa = ks->isa;
  p.kernel = ks->name;
  const int64_t mr = ks->mr, ku = ks->k_unit, k_store = round_up(depth, 64);
  const int64_t panels = (rows + mr - 1) / mr;
  p.data.resize(size_t(panels * mr * k_store * bits / 8));
  for (int64_t m = 0; m < rows; ++m) {
    const int64_t panel = m / mr, r = m % mr;
    for (int64_t k = 0; k < depth; ++k) {
      const int64_t i = panel * mr * k_store + (k / ku) * mr * ku + r * ku + k % ku;
      put_value(p.data.data(), bits, i, w[m * w_row_stride + k]);
    }
  }
  return p;
}

namespace {

// Reference path: unpack the row-major weights and run the oracle.
void run_reference(const PackedQWeights& w, const QSource& b, int64_t n, int64_t n_begin,
                   int64_t n_end, const QEpilogue& ep, const QOutput& out, Scratch& s) {
  const int64_t row_values = round_up(w.depth, 64);
  int8_t* logical = s.ref_weights.ensure(size_t(w.rows * w.depth));
  for (int64_t m = 0; m < w.rows; ++m) {
    for (int64_t k = 0; k < w.depth; ++k) {
      const int64_t i = m * row_values + k;
      int8_t v;
      if (w.bits == 8) {
        v = static_cast<int8_t>(w.data[size_t(i)]);
      } else {
        const uint8_t byte = w.data[size_t(i / 64 * 32 + i % 32)];
        const int nibble = (i % 64 < 32 ? byte : byte >> 4) & 0x0F;
        v = static_cast<int8_t>(nibble >= 8 ? nibble - 16 : nibble);
      }
      logical[m * w.depth + k] = v;
    }
  }
  ref::qgemm_reference(w.mode, w.rows, w.depth, logical, w.depth, w.scales.data(), b, n, n_begin,
                       n_end, ep, out);
}

}  // namespace

void qgemm(const PackedQWeights& w, const QSource& b, int64_t n, int64_t n_begin, int64_t n_end,
           const QEpilogue& ep, const QOutput& out) {
  check_types(w.mode, b, out);
  if (b.conv != nullptr) {
    if (b.conv->im2col_rows() != w.depth) {
      invalid("convolution has " + std::to_string(b.conv->im2col_rows()) +
              " input channels x taps, the weights " + std::to_string(w.depth));
    }
    n = b.conv->out_size();
  }
  if (n_begin < 0 || n_begin > n_end || n_end > n) {
    invalid("column range [" + std::to_string(n_begin) + ", " + std::to_string(n_end) +
            ") is not inside [0, " + std::to_string(n) + ")");
  }
  if (n_begin == n_end) return;
  Scratch& s = scratch();
  if (w.isa == Isa::Ref) {
    run_reference(w, b, n, n_begin, n_end, ep, out, s);
    return;
  }
  const qd::KernelSet* found = find_kernel_set(w.mode, w.bits, w.isa);
  if (found == nullptr || found->isa != w.isa || std::string(found->name) != w.kernel) {
    invalid("weights were packed for kernel '" + w.kernel + "', which this build lacks");
  }
  const qd::KernelSet& ks = *found;

  // Per-row epilogue constants.
  const int64_t M = w.rows, K = w.depth;
  const Int16Quantization q16 = int16_quantization(K, w.max_abs, b.abs_max);
  s.scale.resize(size_t(M));
  s.comp.assign(size_t(M), 0);
  s.bias.assign(size_t(M), 0.0f);
  const int32_t zero_u8 = b.type == QType::S8 ? b.zero_point + 128 : b.zero_point;
  for (int64_t m = 0; m < M; ++m) {
    const float x_scale = w.mode == QuantMode::A8 ? b.scale
                          : w.mode == QuantMode::A16I16 ? q16.scale
                                                        : 1.0f;
    s.scale[size_t(m)] = w.scales[size_t(m)] * x_scale;
    if (w.mode == QuantMode::A8) s.comp[size_t(m)] = zero_u8 * w.row_sums[size_t(m)];
    if (ep.bias) s.bias[size_t(m)] = ep.bias[m];
  }
  qd::TileEpilogue te;
  te.out = out.type;
  te.comp = s.comp.data();
  te.scale = s.scale.data();
  te.bias = s.bias.data();
  te.silu = ep.silu;
  te.clamp_min = ep.clamp_min;
  te.clamp_max = ep.clamp_max;
  if (out.type == QType::U8 || out.type == QType::S8) {
    const bool is_unsigned = out.type == QType::U8;
    te.inv_out_scale = 1.0f / out.scale;
    te.out_zero_point = out.zero_point;
    te.q_lo = (is_unsigned ? 0.0f : -128.0f) - static_cast<float>(out.zero_point);
    te.q_hi = (is_unsigned ? 255.0f : 127.0f) - static_cast<float>(out.zero_point);
  }

  // Blocking.
  const int64_t mr = ks.mr, nr = ks.nr, ku = ks.k_unit;
  const int64_t b_bytes = ks.mode == QuantMode::A8 ? 1 : ks.mode == QuantMode::A16 ? 4 : 2;
  const int64_t kc = std::min(ks.kc, round_up(K, ku));
  const int64_t nc = std::max(nr, kL2Budget / (kc * b_bytes) / nr * nr);
  const int64_t panels = (M + mr - 1) / mr, k_store = round_up(K, 64);
  const size_t a_bytes = qd::panel_value_bytes(ks.panel);
  uint8_t* b_packed = s.b_packed.ensure(size_t(round_up(nc, nr) * round_up(kc, ku) * b_bytes));
  uint8_t* a_prepared = s.a_prepared.ensure(size_t(mr * round_up(kc, 64)) * a_bytes);
  uint8_t* partial = K > kc ? s.partial.ensure(size_t(panels * mr * nc) * 4) : nullptr;
  const size_t out_bytes = type_bytes(out.type);
  uint8_t* tile_out = out.col_stride != 1 ? s.tile_out.ensure(size_t(mr * nr) * out_bytes)
                                          : nullptr;
  uint8_t* out_base = static_cast<uint8_t*>(out.data);

  for (int64_t n0 = n_begin; n0 < n_end; n0 += nc) {
    const int64_t ncb = std::min(nc, n_end - n0);
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
      const int64_t kb = std::min(kc, K - k0), kb_pad = round_up(kb, ku);
      pack_b_block(ks, b, q16, k0, kb, n0, ncb, s, b_packed);
      const size_t strip_bytes = size_t(nr * kb_pad * b_bytes);
      for (int64_t p = 0; p < panels; ++p) {
        const uint8_t* panel = w.data.data() + size_t(p * mr * k_store * w.bits / 8);
        ks.prepare_a(panel + size_t(k0 * mr * w.bits / 8), w.bits, mr * round_up(kb, 64),
                     a_prepared);
        for (int64_t j0 = 0; j0 < ncb; j0 += nr) {
          qd::Tile t;
          t.k_units = kb_pad / ku;
          t.a = a_prepared;
          t.b = b_packed + size_t(j0 / nr) * strip_bytes;
          t.row0 = p * mr;
          t.rows = static_cast<int>(std::min(mr, M - t.row0));
          t.cols = static_cast<int>(std::min(nr, ncb - j0));
          t.partial = partial ? partial + size_t(t.row0 * nc + j0) * 4 : nullptr;
          t.partial_ld = nc;
          t.first = k0 == 0;
          t.last = k0 + kb == K;
          const int64_t col = n0 + j0;
          if (t.last && tile_out) {
            t.dst = tile_out;
            t.dst_ld = nr;
          } else {
            t.dst = out_base + size_t(t.row0 * out.row_stride + col) * out_bytes;
            t.dst_ld = out.row_stride;
          }
          ks.tile(t, te);
          if (t.last && tile_out) {
            for (int r = 0; r < t.rows; ++r) {
              for (int c = 0; c < t.cols; ++c) {
                std::memcpy(out_base + size_t((t.row0 + r) * out.row_stride +
                                              (col + c) * out.col_stride) * out_bytes,
                            tile_out + size_t(r * nr + c) * out_bytes, out_bytes);
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace nibble::kernels
