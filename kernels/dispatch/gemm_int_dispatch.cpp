// Low-bit GEMM driver (kernels/gemm_int.h): kernel choice per ISA, weight packing, the
// epilogue constants and the cache blocking described in gemm_int_kernels.h. Reading B lives in
// gemm_int_pack_b.cpp, the arithmetic in the per-ISA tile kernels; weight-only float (A16) is
// handed to gemm_a16_f32.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/dispatch/gemm_a16_f32.h"
#include "kernels/dispatch/gemm_int_kernels.h"
#include "kernels/dispatch/gemm_int_pack_b.h"
#include "kernels/dispatch/qweight_checks.h"
#include "kernels/gemm_int.h"
#include "nibble/error.h"

namespace nibble::kernels {
namespace qd = qgemm_detail;

namespace {

constexpr int64_t kL2Budget = 320 * 1024;   // bytes of packed B per block (L2 is >= 512 KiB)
constexpr int64_t kMinStrips = 3;           // strips per B block, over which panels are reused
constexpr int64_t kMaxA8Depth = 65536;      // |sum| <= K * 128 * 255 must fit int32
constexpr int64_t kBandBytes = 384 * 1024;  // a convolution's input copy per band of rows
// A convolution's prepared weight panels: 768 KiB keeps yolov10m's deepest 1x1 layers (1152
// channels x 384 or 576 rows) in one K block, 3-9% faster than 384 KiB and two blocks.
constexpr int64_t kPreparedBytes = 768 * 1024;

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

struct Scratch {
  AlignedBuffer<uint8_t> b_packed;
  AlignedBuffer<uint8_t> a_prepared;
  AlignedBuffer<uint8_t> partial;
  AlignedBuffer<uint8_t> tile_out;  // one tile, for outputs that are not plain rows of B's columns
  AlignedBuffer<int32_t> pending_sums;  // a tile's sums whose epilogue is deferred
  AlignedBuffer<int8_t> ref_weights;
  std::vector<float> scale, bias;
  std::vector<int32_t> comp, strip_offsets;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

size_t type_bytes(QType t) { return t == QType::U8 || t == QType::S8 ? 1 : 4; }

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
    invalid("int8 activation zero point " + std::to_string(b.zero_point) + " outside [-128, 127]");
  }
  if ((out.type == QType::U8 || out.type == QType::S8) &&
      !(std::isfinite(out.scale) && out.scale > 0)) {
    invalid("output scale must be finite and positive");
  }
}

}  // namespace

std::string qgemm_kind_name(QuantMode mode, int weight_bits) {
  const char* activations = mode == QuantMode::A8    ? "a8"
                            : mode == QuantMode::A16 ? "a16"
                                                     : "a16i16";
  return std::string(weight_bits == 4 ? "w4" : "w8") + activations;
}

size_t PackedQWeights::packed_bytes() const {
  return data.size() + scales.size() * sizeof(float) + row_sums.size() * sizeof(int32_t);
}

Int16Quantization int16_quantization(int64_t depth, int32_t weight_max_abs, float abs_max) {
  Int16Quantization q;
  const int64_t worst = std::max<int64_t>(1, depth) * std::max<int32_t>(1, weight_max_abs);
  q.qmax =
      static_cast<int32_t>(std::min<int64_t>(32767, std::numeric_limits<int32_t>::max() / worst));
  q.qmax = std::max(q.qmax, 1);
  if (std::isfinite(abs_max) && abs_max > 0) {
    q.scale = abs_max / static_cast<float>(q.qmax);
    q.inv_scale = 1.0f / q.scale;
  }
  return q;
}

float qgemm_abs_max(const float* x, int64_t count) {
  float m = 0.0f;
  int64_t i = 0;
#if defined(__SSE2__)
  // Four independent maxima of |x| (the sign bit cleared).
  const __m128 magnitude = _mm_castsi128_ps(_mm_set1_epi32(0x7FFFFFFF));
  __m128 m0 = _mm_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
  for (; i + 16 <= count; i += 16) {
    m0 = _mm_max_ps(m0, _mm_and_ps(_mm_loadu_ps(x + i), magnitude));
    m1 = _mm_max_ps(m1, _mm_and_ps(_mm_loadu_ps(x + i + 4), magnitude));
    m2 = _mm_max_ps(m2, _mm_and_ps(_mm_loadu_ps(x + i + 8), magnitude));
    m3 = _mm_max_ps(m3, _mm_and_ps(_mm_loadu_ps(x + i + 12), magnitude));
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3)));
  m = std::max(std::max(lanes[0], lanes[1]), std::max(lanes[2], lanes[3]));
#endif
  for (; i < count; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

namespace {

// K as the kernels see it: convolution weights run over (channel group, tap, channel), groups
// of k_unit channels (the channels padded to a multiple of it).
int64_t packed_depth(const PackedQWeights& w, int64_t k_unit) {
  if (w.conv_taps == 0) return w.depth;
  return round_up(w.depth / w.conv_taps, k_unit) * w.conv_taps;
}

PackedQWeights pack_impl(QuantMode mode, int bits, int64_t rows, int64_t depth, const int8_t* w,
                         int64_t w_row_stride, const float* scales, bool per_channel, Isa isa,
                         int64_t conv_taps) {
  qweights::check_arguments("qgemm", bits, rows, depth, isa);
  if (mode == QuantMode::A8 && depth > kMaxA8Depth) {
    invalid("depth " + std::to_string(depth) + " exceeds " + std::to_string(kMaxA8Depth) +
            " (int32 sums of w8a8/w4a8 could overflow)");
  }
  qweights::RowStats stats = qweights::row_stats("qgemm", bits, rows, depth, w, w_row_stride,
                                                 scales, per_channel, "row", "column");
  PackedQWeights p;
  p.mode = mode;
  p.bits = bits;
  p.rows = rows;
  p.depth = depth;
  p.scales = std::move(stats.scales);
  p.row_sums = std::move(stats.sums);
  p.max_abs = stats.max_abs;

  p.conv_taps = conv_taps;
  // Weight-only float: the FP32 micro-kernels, whose K order (channel, tap) convolutions share.
  if (mode == QuantMode::A16 && a16::pack(p, w, w_row_stride, isa)) return p;
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
  const int64_t mr = ks->mr, ku = ks->k_unit, k_store = round_up(packed_depth(p, ku), 64);
  const int64_t panels = (rows + mr - 1) / mr;
  p.data.resize(size_t(panels * mr * k_store * bits / 8));
  for (int64_t m = 0; m < rows; ++m) {
    const int64_t panel = m / mr, r = m % mr;
    for (int64_t k = 0; k < depth; ++k) {
      int64_t kp = k;
      if (p.conv_taps > 0) {
        const int64_t c = k / p.conv_taps, t = k % p.conv_taps;
        kp = (c / ku) * ku * p.conv_taps + t * ku + c % ku;
      }
      const int64_t i = panel * mr * k_store + (kp / ku) * mr * ku + r * ku + kp % ku;
      put_value(p.data.data(), bits, i, w[m * w_row_stride + k]);
    }
  }
  return p;
}

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

// Where the tiles of one call write: straight into the output when its rows are the grid's
// columns, or are once the grid's dropped columns are left out (kernel sets that drop columns
// themselves: KernelSet::drops_columns), else through one tile of scratch, copied run by run
// (convolution grids) or element by element (strided outputs).
class TileWriter {
 public:
  TileWriter(const QOutput& out, const qd::ColumnGrid& grid, const qd::KernelSet& ks, Scratch& s)
      : out_(out),
        grid_(grid),
        bytes_(type_bytes(out.type)),
        direct_(out.col_stride == 1 && (grid.identity() || ks.drops_columns)),
        nr_(ks.nr),
        base_(static_cast<uint8_t*>(out.data)),
        tile_(direct_ ? nullptr : s.tile_out.ensure(size_t(ks.mr * ks.nr) * bytes_)) {}

  // Sets the tile's destination for grid column v.
  void target(qd::Tile& t, int64_t v) const {
    if (direct_ && grid_.identity()) {
      t.dst = base_ + size_t(t.row0 * out_.row_stride + v) * bytes_;
      t.dst_ld = out_.row_stride;
    } else if (direct_) {
      // The kept columns' outputs follow each other from the first one's.
      int64_t first = -1;
      t.kept_columns = 0;
      grid_.for_each_run(v, t.cols, [&](int64_t offset, int64_t n, int64_t len) {
        if (first < 0) first = n;
        t.kept_columns |= (len >= 64 ? ~uint64_t{0} : (uint64_t{1} << len) - 1) << offset;
      });
      t.dst = base_ + size_t(t.row0 * out_.row_stride + std::max<int64_t>(first, 0)) * bytes_;
      t.dst_ld = out_.row_stride;
    } else {
      t.dst = tile_;
      t.dst_ld = nr_;
    }
  }
  // After the tile's last K block.
  void finish(const qd::Tile& t, int64_t v) const {
    if (direct_) return;
    grid_.for_each_run(v, t.cols, [&](int64_t offset, int64_t n, int64_t len) {
      for (int r = 0; r < t.rows; ++r) {
        const uint8_t* src = tile_ + size_t(r * nr_ + offset) * bytes_;
        uint8_t* dst = base_ + size_t((t.row0 + r) * out_.row_stride) * bytes_;
        if (out_.col_stride == 1) {
          std::memcpy(dst + size_t(n) * bytes_, src, size_t(len) * bytes_);
          continue;
        }
        for (int64_t j = 0; j < len; ++j) {
          std::memcpy(dst + size_t((n + j) * out_.col_stride) * bytes_, src + size_t(j) * bytes_,
                      bytes_);
        }
      }
    });
  }

 private:
  const QOutput& out_;
  const qd::ColumnGrid& grid_;
  size_t bytes_;
  bool direct_;
  int64_t nr_;
  uint8_t* base_;
  uint8_t* tile_;
};

// A convolution with weights from pack_qconv_weights: B read in place from a copy of the input
// (ConvImage), made for one band of output rows at a time so that it stays in L2 while the tiles
// read it. Within a band, for each block of columns and K, every strip is swept over all weight
// panels: a tile reads 48 bytes of B per 8 of A, so the strip is what stays in L1 (on 1x1
// layers its K units are a band plane apart and share no cache lines; sweeping panels over
// strips instead streamed every strip from L2: 2-5% slower on yolov10m's 1x1 and 3x3 layers).
// The K block's prepared panels are kept together, within kPreparedBytes (L2, next to the
// band's copy), and prepared once per call when K is one block.
void run_direct_conv(const PackedQWeights& w, const qd::KernelSet& ks, const QSource& b,
                     const Int16Quantization& q16, int64_t n_begin, int64_t n_end,
                     const qd::TileEpilogue& te, const QOutput& out, Scratch& s) {
  const ref::ConvGeometry& g = *b.conv;
  const int64_t mr = ks.mr, nr = ks.nr, ku = ks.k_unit, depth = packed_depth(w, ku);
  const int64_t k_store = round_up(depth, 64), panels = (w.rows + mr - 1) / mr;
  const size_t value_bytes = qd::panel_value_bytes(ks.panel);
  const int64_t kc_prepared =
      std::max<int64_t>(64, kPreparedBytes / (panels * mr * int64_t(value_bytes)) / 64 * 64);
  const int64_t kc = std::min({ks.kc, depth, kc_prepared}), nc = 8 * nr;
  const size_t panel_bytes = size_t(mr * round_up(kc, 64)) * value_bytes;
  // Output rows per band: the band's copy (phases x channel groups x rows x grid width pixels)
  // within kBandBytes, but at least a column block, over which the weight panels are reused.
  const int64_t out_w = g.out[2];
  const int64_t row_bytes = g.stride[1] * g.stride[2] * ((g.channels + ku - 1) / ku) * 4 *
                            (out_w + (g.kernel[2] - 1) * g.dilation[2] / g.stride[2]);
  const int64_t reach = (g.kernel[1] - 1) * g.dilation[1] / g.stride[1];
  const int64_t band_rows =
      std::max<int64_t>(kBandBytes / row_bytes - reach, (nc + out_w - 1) / out_w);
  uint8_t* a_prepared = s.a_prepared.ensure(size_t(panels) * panel_bytes);
  int64_t prepared_k0 = -1;  // the K block whose panels a_prepared holds
  uint8_t* partial = depth > kc ? s.partial.ensure(size_t(panels * mr * nc) * 4) : nullptr;
  // Kernel sets that can defer a tile's epilogue run it during the next tile call (when they
  // leave it pending); the writer's copy from its tile buffer then follows that call.
  qd::PendingEpilogue pending;
  qd::PendingEpilogue* defer = nullptr;
  if (ks.flush != nullptr) {
    pending.sums = s.pending_sums.ensure(size_t(mr * nr));
    defer = &pending;
  }
  for (int64_t band_begin = n_begin; band_begin < n_end;) {
    const int64_t band_end = std::min(n_end, (band_begin / out_w + band_rows) * out_w);
    const qd::ConvImage image(b, w.mode, q16, band_begin, band_end, nr, ks.isa);
    const TileWriter writer(out, image.grid(), ks, s);
    qd::Tile unfinished;  // the last tile whose epilogue is pending
    int64_t unfinished_v = -1;
    for (int64_t v0 = image.v_begin(); v0 < image.v_end(); v0 += nc) {
      const int64_t v1 = std::min(v0 + nc, image.v_end());
      for (int64_t k0 = 0; k0 < depth; k0 += kc) {
        const int64_t kb = std::min(kc, depth - k0);
        if (prepared_k0 != k0) {
          for (int64_t p = 0; p < panels; ++p) {
            const uint8_t* panel =
                w.data.data() + size_t((p * mr * k_store + k0 * mr) * w.bits / 8);
            // Also for int8 panels: a compact copy reads faster than the strided packed ones.
            ks.prepare_a(panel, w.bits, mr * round_up(kb, 64), a_prepared + p * panel_bytes);
          }
          prepared_k0 = k0;
        }
        for (int64_t v = v0; v < v1; v += nr) {
          for (int64_t p = 0; p < panels; ++p) {
            qd::Tile t;
            t.k_units = kb / ku;
            t.a = a_prepared + p * panel_bytes;
            t.b = image.column(v);
            t.b_offsets = image.unit_offsets() + k0 / ku;
            t.row0 = p * mr;
            t.rows = static_cast<int>(std::min(mr, w.rows - t.row0));
            t.cols = static_cast<int>(std::min(nr, v1 - v));
            t.partial = partial ? partial + size_t(t.row0 * nc + (v - v0)) * 4 : nullptr;
            t.partial_ld = nc;
            t.first = k0 == 0;
            t.last = k0 + kb == depth;
            t.pending = defer;
            writer.target(t, v);
            ks.tile(t, te);
            if (defer == nullptr) {
              if (t.last) writer.finish(t, v);
              continue;
            }
            if (unfinished_v >= 0) writer.finish(unfinished, unfinished_v);
            unfinished_v = -1;
            if (t.last && pending.rows > 0) {
              unfinished = t;
              unfinished_v = v;
            } else if (t.last) {
              writer.finish(t, v);
            }
          }
        }
      }
    }
    if (defer != nullptr) {
      ks.flush(pending, te);
      if (unfinished_v >= 0) writer.finish(unfinished, unfinished_v);
    }
    band_begin = band_end;
  }
}

}  // namespace

PackedQWeights pack_qweights(QuantMode mode, int bits, int64_t rows, int64_t depth, const int8_t* w,
                             int64_t w_row_stride, const float* scales, bool per_channel, Isa isa) {
  return pack_impl(mode, bits, rows, depth, w, w_row_stride, scales, per_channel, isa, 0);
}

PackedQWeights pack_qconv_weights(QuantMode mode, int bits, int64_t out_channels,
                                  int64_t in_channels, int64_t taps, const int8_t* w,
                                  const float* scales, bool per_channel, Isa isa) {
  if (in_channels <= 0 || taps <= 0) {
    invalid("convolution weights need channels and taps, not " + std::to_string(in_channels) +
            " x " + std::to_string(taps));
  }
  return pack_impl(mode, bits, out_channels, in_channels * taps, w, in_channels * taps, scales,
                   per_channel, isa, taps);
}

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
  if (w.conv_taps > 0 && (b.conv == nullptr || b.conv->kernel_size() != w.conv_taps ||
                          !qd::ConvImage::supports(*b.conv))) {
    invalid("weights packed for a 2-D convolution of " + std::to_string(w.conv_taps) +
            " taps need a source of that geometry");
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
  if (w.mode == QuantMode::A16) {
    a16::run(w, b, n_begin, n_end, ep, out);
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
  const float x_scale = w.mode == QuantMode::A8 ? b.scale : q16.scale;
  for (int64_t m = 0; m < M; ++m) {
    s.scale[size_t(m)] = w.scales[size_t(m)] * x_scale;
    if (w.mode == QuantMode::A8) s.comp[size_t(m)] = zero_u8 * w.row_sums[size_t(m)];
    if (ep.bias) s.bias[size_t(m)] = ep.bias[m];
  }
  const qd::TileEpilogue te = qd::tile_epilogue(ep, out, s.scale.data(), s.bias.data(), s.comp.data());
  if (w.conv_taps > 0) {
    run_direct_conv(w, ks, b, q16, n_begin, n_end, te, out, s);
    return;
  }

  // Packed B blocks, GotoBLAS order (gemm_int_kernels.h).
  qd::BReader reader(b);
  const int64_t mr = ks.mr, nr = ks.nr, ku = ks.k_unit;
  const int64_t b_bytes = ks.mode == QuantMode::A8 ? 1 : 2;
  // K blocks no deeper than the kernel set's, nor than lets a B block hold kMinStrips strips.
  const int64_t kc =
      std::min({ks.kc, round_up(K, ku),
                std::max<int64_t>(64, kL2Budget / (kMinStrips * nr * b_bytes) / 64 * 64)});
  const int64_t nc = std::max(nr, kL2Budget / (kc * b_bytes) / nr * nr);
  const int64_t panels = (M + mr - 1) / mr, k_store = round_up(K, 64);
  const size_t a_bytes = qd::panel_value_bytes(ks.panel);
  uint8_t* b_packed = s.b_packed.ensure(size_t(nc * round_up(kc, ku) * b_bytes));
  uint8_t* a_prepared = s.a_prepared.ensure(size_t(mr * round_up(kc, 64)) * a_bytes);
  uint8_t* partial = K > kc ? s.partial.ensure(size_t(panels * mr * nc) * 4) : nullptr;
  // Packed strips hold their K units (4 bytes per column in every mode) one after another.
  s.strip_offsets.resize(size_t(kc / ku));
  for (size_t u = 0; u < s.strip_offsets.size(); ++u) {
    s.strip_offsets[u] = static_cast<int32_t>(u * size_t(nr) * 4);
  }
  const qd::ColumnGrid columns;  // B's own
  const TileWriter writer(out, columns, ks, s);

  for (int64_t v0 = n_begin; v0 < n_end; v0 += nc) {
    const int64_t ncb = std::min(nc, n_end - v0);
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
      const int64_t kb = std::min(kc, K - k0), kb_pad = round_up(kb, ku);
      reader.pack(ks, q16, k0, kb, v0, ncb, b_packed);
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
          t.b_offsets = s.strip_offsets.data();
          t.row0 = p * mr;
          t.rows = static_cast<int>(std::min(mr, M - t.row0));
          t.cols = static_cast<int>(std::min(nr, ncb - j0));
          t.partial = partial ? partial + size_t(t.row0 * nc + j0) * 4 : nullptr;
          t.partial_ld = nc;
          t.first = k0 == 0;
          t.last = k0 + kb == K;
          writer.target(t, v0 + j0);
          ks.tile(t, te);
          if (t.last) writer.finish(t, v0 + j0);
        }
      }
    }
  }
}

}  // namespace nibble::kernels
