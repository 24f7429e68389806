// Integer Winograd F(2x2,3x3) (kernels/winograd_i16.h) at every ISA level this CPU has, against
// two oracles: the direct integer convolution of the same quantized input (the I32 output, Y,
// must equal it exactly) and ref::winograd_i16_reference (every output type bit for bit,
// except SiLU, whose vector exp is within its error). Tail shapes (sides around the 2x2 tile,
// channels around the tiles' MR/NR and the pair), 4 and 8 bits, extreme values and deep K
// (per-point sums at the int32 bound, output transform sums wrapping around), epilogues, batches, threads, bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "engine/exec/thread_pool.h"
#include "kernels/quantize_f32.h"
#include "kernels/winograd_i16.h"
#include "nibble/error.h"
#include "tests/kernels/winograd_testing.h"

using namespace nibble::kernels;
using namespace winograd_testing;

namespace {

std::string describe(const Case& tc, int bits) {
  return "w" + std::to_string(bits) + " N" + std::to_string(tc.batch) + " C" +
         std::to_string(tc.cin) + " M" + std::to_string(tc.cout) + " " + std::to_string(tc.h) +
         "x" + std::to_string(tc.w) + " pad " + std::to_string(tc.pad_begin) + "/" +
         std::to_string(tc.pad_end);
}

// Every ISA level this CPU runs, VNNI included (the A16I16 tiles differ there).
std::vector<Isa> testable_levels() {
  std::vector<Isa> levels;
  for (Isa isa : {Isa::Ref, Isa::Avx2, Isa::Avx512, Isa::Avx512Vnni}) {
    if (isa <= detected_isa()) levels.push_back(isa);
  }
  return levels;
}

struct Data {
  std::vector<int8_t> w;
  std::vector<float> scales, bias, x;
  float abs_max = 0.0f;
};

Data random_case_data(const Case& tc, int bits, std::mt19937& rng) {
  Data d;
  const int lo = bits == 4 ? -8 : -128, hi = bits == 4 ? 7 : 127;
  std::uniform_int_distribution<int> value(lo, hi);
  d.w.resize(size_t(tc.cout * tc.cin * 9));
  for (int8_t& v : d.w) v = static_cast<int8_t>(value(rng));
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f), positive(0.002f, 0.02f);
  for (int64_t o = 0; o < tc.cout; ++o) {
    d.scales.push_back(positive(rng));
    d.bias.push_back(unit(rng));
  }
  d.x.resize(size_t(tc.batch * tc.cin * tc.h * tc.w));
  for (float& v : d.x) v = unit(rng);
  for (float v : d.x) d.abs_max = std::max(d.abs_max, std::fabs(v));
  return d;
}

int32_t max_abs(const std::vector<int8_t>& w) {
  int32_t m = 0;
  for (int8_t v : w) m = std::max<int32_t>(m, std::abs(int32_t{v}));
  return m;
}

// The direct convolution of the quantized input, in int64: what Y must equal.
std::vector<int32_t> direct_conv(const ConvF32Shape& s, const Data& d) {
  const ref::ConvGeometry& g = s.geometry;
  const Int16Quantization q = winograd_i16_quantization(s.in_channels, max_abs(d.w), d.abs_max);
  const float qmax = static_cast<float>(q.qmax);
  const int64_t in_h = g.in[1], in_w = g.in[2], out_h = g.out[1], out_w = g.out[2];
  std::vector<int32_t> xq(d.x.size());
  for (size_t i = 0; i < xq.size(); ++i) {
    xq[i] = static_cast<int32_t>(std::nearbyint(std::min(std::max(d.x[i] * q.inv_scale, -qmax), qmax)));
  }
  std::vector<int32_t> y(size_t(s.batch * s.out_channels * out_h * out_w));
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t o = 0; o < s.out_channels; ++o) {
      for (int64_t oy = 0; oy < out_h; ++oy) {
        for (int64_t ox = 0; ox < out_w; ++ox) {
          int64_t sum = 0;
          for (int64_t c = 0; c < s.in_channels; ++c) {
            for (int kh = 0; kh < 3; ++kh) {
              for (int kw = 0; kw < 3; ++kw) {
                const int64_t iy = oy - g.pad[1] + kh, ix = ox - g.pad[2] + kw;
                if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) continue;
                sum += int64_t{d.w[size_t((o * s.in_channels + c) * 9 + kh * 3 + kw)]} *
                       xq[size_t(((n * s.in_channels + c) * in_h + iy) * in_w + ix)];
              }
            }
          }
          REQUIRE(std::abs(4 * sum) <= int64_t{2147483647});  // the bound of the quantization
          y[size_t(((n * s.out_channels + o) * out_h + oy) * out_w + ox)] = static_cast<int32_t>(sum);
        }
      }
    }
  }
  return y;
}

template <typename T>
std::vector<T> run(const ConvF32Shape& s, const WinogradI16Weights& packed, const Data& d,
                   QType type, const QEpilogue& e, nibble::ThreadPool* pool, bool reference) {
  const int64_t out_size = s.geometry.out_size();
  std::vector<T> y(size_t(s.batch * s.out_channels * out_size));
  QOutput out;
  out.type = type;
  out.data = y.data();
  out.row_stride = out_size;
  out.scale = 0.01f;
  out.zero_point = type == QType::U8 ? 120 : -5;
  if (reference) {
    ref::winograd_i16_reference(s, d.w.data(), d.scales.data(), d.x.data(), d.abs_max, e, out);
  } else {
    winograd_i16_conv(s, packed, d.x.data(), d.abs_max, e, out, pool);
  }
  return y;
}

// All checks of one case at one ISA level.
void check(Isa isa, int bits, const Case& tc, const Data& d, nibble::ThreadPool* pool = nullptr) {
  const ConvF32Shape s = make_shape(tc);
  CAPTURE(describe(tc, bits));
  const WinogradI16Weights packed = winograd_i16_pack(s, bits, d.w.data(), d.scales.data(), isa);
  REQUIRE(packed.isa <= isa);
  QEpilogue plain;
  plain.bias = d.bias.data();
  const std::vector<int32_t> want = direct_conv(s, d);
  CHECK(run<int32_t>(s, packed, d, QType::I32, plain, pool, false) == want);
  CHECK(run<int32_t>(s, packed, d, QType::I32, plain, nullptr, true) == want);

  QEpilogue clamp = plain;
  clamp.clamp_min = -0.3f;
  clamp.clamp_max = 0.4f;
  for (const QEpilogue& e : {plain, clamp}) {
    CHECK(run<float>(s, packed, d, QType::F32, e, pool, false) ==
          run<float>(s, packed, d, QType::F32, e, nullptr, true));
    CHECK(run<uint8_t>(s, packed, d, QType::U8, e, pool, false) ==
          run<uint8_t>(s, packed, d, QType::U8, e, nullptr, true));
    CHECK(run<int8_t>(s, packed, d, QType::S8, e, pool, false) ==
          run<int8_t>(s, packed, d, QType::S8, e, nullptr, true));
  }
  QEpilogue silu = clamp;
  silu.silu = true;
  const std::vector<float> got = run<float>(s, packed, d, QType::F32, silu, pool, false);
  const std::vector<float> ref_silu = run<float>(s, packed, d, QType::F32, silu, nullptr, true);
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(got[i] - ref_silu[i]) > 2e-6f * (1.0f + std::fabs(ref_silu[i]))) {
      FAIL_CHECK("SiLU output " << i << ": " << got[i] << " vs " << ref_silu[i]);
      break;
    }
  }
  // Quantized outputs are QuantizeLinear of the float ones, SiLU included (fused QDQ chains
  // rely on it).
  std::vector<uint8_t> quantized(got.size());
  quantize_f32_kernel<uint8_t>(Isa::Ref)(got.data(), quantized.data(), int64_t(got.size()), 0.01f, 120);
  CHECK(run<uint8_t>(s, packed, d, QType::U8, silu, pool, false) == quantized);
}

}  // namespace

TEST_CASE("winograd_i16 tail shapes, 4 and 8 bits, every ISA level: exact") {
  std::mt19937 rng(16);
  std::vector<Case> cases;
  for (int64_t h = 1; h <= 9; ++h) {
    for (int64_t w : {1, 2, 3, 5, 8, 9}) {
      for (int64_t pad : {0, 1}) {
        if (h + 2 * pad < 3 || w + 2 * pad < 3) continue;
        cases.push_back({1, 3, 9, h, w, pad, pad});
      }
    }
  }
  cases.push_back({1, 5, 7, 6, 7, 1, 0});  // pads 1/0
  cases.push_back({1, 5, 7, 7, 6, 0, 1});  // pads 0/1
  for (int64_t c : {1, 2, 3, 7, 8, 9, 17, 47, 48, 49}) {
    cases.push_back({1, c, 17, 7, 9, 1, 1});
    cases.push_back({1, 9, c, 9, 7, 1, 1});
  }
  cases.push_back({1, 33, 49, 30, 37, 1, 1});  // several strips, runs across tile rows
  cases.push_back({2, 12, 10, 7, 9, 1, 1});    // batch
  for (Isa isa : testable_levels()) {
    const std::string level = isa_name(isa);
    CAPTURE(level);
    for (int bits : {4, 8}) {
      for (const Case& tc : cases) check(isa, bits, tc, random_case_data(tc, bits, rng));
    }
  }
}

TEST_CASE("winograd_i16 extreme values and deep K stay exact (int32 wrap-around)") {
  std::mt19937 rng(3);
  for (Isa isa : testable_levels()) {
    const std::string level = isa_name(isa);
    CAPTURE(level);
    for (int bits : {4, 8}) {
      const int8_t w_min = bits == 4 ? -8 : -128, w_max = bits == 4 ? 7 : 127;
      for (int64_t cin : {64, 600}) {
        const Case tc{1, cin, 9, 6, 5, 1, 1};
        Data d = random_case_data(tc, bits, rng);
        // All weights at the negative extreme, every input at +qmax: per-point sums near the
        // int32 bound, whose sums in the output transform wrap around.
        std::fill(d.w.begin(), d.w.end(), w_min);
        std::fill(d.x.begin(), d.x.end(), 1.0f);
        d.abs_max = 1.0f;
        check(isa, bits, tc, d);
        std::fill(d.x.begin(), d.x.end(), -1.0f);
        check(isa, bits, tc, d);
        // Alternating extremes: per-point sums of mixed sign.
        for (size_t i = 0; i < d.w.size(); ++i) d.w[i] = i % 3 == 0 ? w_max : w_min;
        for (size_t i = 0; i < d.x.size(); ++i) d.x[i] = i % 2 == 0 ? 1.0f : -1.0f;
        check(isa, bits, tc, d);
      }
    }
  }
}

TEST_CASE("winograd_i16 threads and splits") {
  std::mt19937 rng(8);
  nibble::ThreadPool pool(3);
  for (Isa isa : testable_levels()) {
    const std::string level = isa_name(isa);
    CAPTURE(level);
    for (const Case& tc : {Case{1, 40, 50, 13, 11, 1, 1}, Case{2, 16, 100, 5, 6, 1, 1},
                           Case{1, 16, 16, 44, 46, 1, 1}}) {
      check(isa, 4, tc, random_case_data(tc, 4, rng), &pool);
    }
  }
}

TEST_CASE("winograd_i16 quantization bound and bad input") {
  // qmax 8191 keeps |V| <= 4 · qmax within int16; deep int8 layers lower it.
  CHECK(winograd_i16_quantization(96, 8, 1.0f).qmax == 8191);
  const Int16Quantization deep = winograd_i16_quantization(600, 128, 2.0f);
  CHECK(int64_t{36} * 600 * 128 * deep.qmax <= int64_t{2147483647});
  CHECK(deep.scale == doctest::Approx(2.0f / float(deep.qmax)));

  std::mt19937 rng(1);
  const Case tc{1, 8, 8, 6, 6, 1, 1};
  const ConvF32Shape s = make_shape(tc);
  Data d = random_case_data(tc, 8, rng);
  CHECK_THROWS_AS(winograd_i16_pack(s, 4, d.w.data(), d.scales.data()), nibble::Error);  // not int4
  CHECK_THROWS_AS(winograd_i16_pack(s, 6, d.w.data(), d.scales.data()), nibble::Error);
  std::vector<float> bad_scales = d.scales;
  bad_scales[3] = 0.0f;
  CHECK_THROWS_AS(winograd_i16_pack(s, 8, d.w.data(), bad_scales.data()), nibble::Error);
  ConvF32Shape strided = s;
  strided.geometry.stride[1] = 2;
  CHECK_THROWS_AS(winograd_i16_pack(strided, 8, d.w.data(), d.scales.data()), nibble::Error);
  const WinogradI16Weights packed = winograd_i16_pack(s, 8, d.w.data(), d.scales.data());
  const ConvF32Shape other = make_shape({1, 8, 9, 6, 6, 1, 1});
  std::vector<float> y(size_t(9 * 36));
  QOutput out;
  out.data = y.data();
  out.row_stride = 36;
  CHECK_THROWS_AS(winograd_i16_conv(other, packed, d.x.data(), d.abs_max, {}, out, nullptr),
                  nibble::Error);
  // Weights stay at their bit width: nine taps per channel pair of each point's U.
  const Data d4 = random_case_data({1, 64, 64, 6, 6, 1, 1}, 4, rng);
  const ConvF32Shape s64 = make_shape({1, 64, 64, 6, 6, 1, 1});
  const WinogradI16Weights p4 = winograd_i16_pack(s64, 4, d4.w.data(), d4.scales.data());
  CHECK(p4.data.size() >= 64 * 64 * 9 / 2);
  CHECK(p4.data.size() < 64 * 64 * 9 / 2 * 5 / 4);
  CHECK(p4.packed_bytes() == p4.data.size() + 64 * sizeof(float));
}
