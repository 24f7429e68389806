// Softmax and LogSoftmax against the bits of ONNX Runtime's MLAS kernels
// (engine/ops/mlas_softmax.h) in both x86-64 layouts: the FMA3 kernel (AVX2 CPUs) and the
// AVX-512F kernel. The expected bits come from tests/e2e/mlas_softmax_reference.py --bits, a
// numpy emulation of both kernels that `--check-onnxruntime` shows bit-identical to ONNX
// Runtime 1.32 on the kernel of its own CPU (AVX-512F where this was written). This process
// checks the kernel of its CPU; the layout test runs it again with NIBBLE_MLAS_SOFTMAX set to
// each kernel.
#include <doctest/doctest.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>

#include "engine/ops/mlas_softmax.h"
#include "tests/engine/test_elementwise_util.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

// 45 values: the kernels' lanes (8 or 16) add them in different orders, so sums differ in
// the last bit and so do most outputs.
std::vector<double> lanes_row() {
  std::vector<double> row(45);
  for (size_t i = 0; i < row.size(); ++i) row[i] = double((i * 29 + 4) % 53) * 0.2 - 5.0;
  return row;
}
const uint32_t kLanesFma3Softmax[45] = {
      0x378fcf04u, 0x3bb98bedu, 0x384374cdu, 0x3c7c2f18u, 0x3904d387u, 0x3d2b6073u,
      0x39b48797u, 0x3de8ecd8u, 0x3a755d7fu, 0x37013c1au, 0x3b26be32u, 0x37afa5f5u,
      0x3be2a08bu, 0x386ebb13u, 0x3c9a0255u, 0x39223bffu, 0x3d5151efu, 0x39dc7fd6u,
      0x3e0e3f6du, 0x3a95d848u, 0x371dd902u, 0x3b4ba907u, 0x37d68988u, 0x3c0a66c9u,
      0x3891cb0du, 0x3cbc1b6eu, 0x39462749u, 0x3d7faa04u, 0x3a06a8c3u, 0x3e2dbde5u,
      0x3ab70558u, 0x3740cbb5u, 0x3b78c050u, 0x380304afu, 0x3c290b43u, 0x38b2127eu,
      0x3ce5c12du, 0x39720676u, 0x3d9c2268u, 0x3a247924u, 0x3e54356au, 0x3adf8ad2u,
      0x376b7b21u, 0x3b97e9a8u, 0x382006a2u,
};
const uint32_t kLanesFma3LogSoftmax[45] = {
      0xc12f951au, 0xc0a5909au, 0xc11f951au, 0xc085909au, 0xc10f951au, 0xc04b2134u,
      0xc0ff2a33u, 0xc00b2134u, 0xc0df2a33u, 0xc13c61e7u, 0xc0bf2a33u, 0xc12c61e7u,
      0xc09f2a34u, 0xc11c61e7u, 0xc07e5468u, 0xc10c61e7u, 0xc03e5468u, 0xc0f8c3cdu,
      0xbffca8cdu, 0xc0d8c3cdu, 0xc1392eb4u, 0xc0b8c3cdu, 0xc1292eb4u, 0xc098c3cdu,
      0xc1192eb4u, 0xc071879au, 0xc1092eb4u, 0xc031879au, 0xc0f25d67u, 0xbfe30f35u,
      0xc0d25d67u, 0xc135fb80u, 0xc0b25d67u, 0xc125fb80u, 0xc0925d67u, 0xc115fb80u,
      0xc064baceu, 0xc105fb80u, 0xc024baceu, 0xc0ebf700u, 0xbfc9759du, 0xc0cbf700u,
      0xc132c84eu, 0xc0abf700u, 0xc122c84eu,
};
const uint32_t kLanesAvx512fSoftmax[45] = {
      0x378fcf04u, 0x3bb98becu, 0x384374ccu, 0x3c7c2f17u, 0x3904d387u, 0x3d2b6073u,
      0x39b48796u, 0x3de8ecd7u, 0x3a755d7du, 0x37013c19u, 0x3b26be31u, 0x37afa5f4u,
      0x3be2a08au, 0x386ebb12u, 0x3c9a0254u, 0x39223bffu, 0x3d5151eeu, 0x39dc7fd5u,
      0x3e0e3f6cu, 0x3a95d847u, 0x371dd901u, 0x3b4ba906u, 0x37d68987u, 0x3c0a66c8u,
      0x3891cb0cu, 0x3cbc1b6du, 0x39462748u, 0x3d7faa03u, 0x3a06a8c3u, 0x3e2dbde4u,
      0x3ab70558u, 0x3740cbb4u, 0x3b78c04fu, 0x380304aeu, 0x3c290b42u, 0x38b2127du,
      0x3ce5c12cu, 0x39720675u, 0x3d9c2267u, 0x3a247923u, 0x3e543569u, 0x3adf8ad1u,
      0x376b7b20u, 0x3b97e9a7u, 0x382006a2u,
};
const uint32_t kLanesAvx512fLogSoftmax[45] = {
      0xc12f951au, 0xc0a5909au, 0xc11f951au, 0xc085909au, 0xc10f951au, 0xc04b2135u,
      0xc0ff2a34u, 0xc00b2135u, 0xc0df2a34u, 0xc13c61e7u, 0xc0bf2a34u, 0xc12c61e7u,
      0xc09f2a34u, 0xc11c61e7u, 0xc07e5468u, 0xc10c61e7u, 0xc03e5468u, 0xc0f8c3ceu,
      0xbffca8ceu, 0xc0d8c3ceu, 0xc1392eb4u, 0xc0b8c3ceu, 0xc1292eb4u, 0xc098c3ceu,
      0xc1192eb4u, 0xc071879bu, 0xc1092eb4u, 0xc031879bu, 0xc0f25d68u, 0xbfe30f36u,
      0xc0d25d68u, 0xc135fb80u, 0xc0b25d67u, 0xc125fb80u, 0xc0925d67u, 0xc115fb80u,
      0xc064baceu, 0xc105fb80u, 0xc024bacfu, 0xc0ebf700u, 0xbfc9759eu, 0xc0cbf700u,
      0xc132c84eu, 0xc0abf700u, 0xc122c84eu,
};

// A wide row: exp(x - max) below -87.7 is 0 on the FMA3 kernel and subnormal on AVX-512F.
std::vector<double> wide_row() {
  return {0.0, -87.5, -87.8, -88.0, -88.5, -95.0, -100.0, -103.0, -110.0,
          -std::numeric_limits<double>::infinity(), -1.0, -2.0, -3.0};
}
const uint32_t kWideFma3Softmax[13] = {
      0x3f24d791u, 0x0045fe08u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u,
      0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x3e72916au, 0x3db278b9u,
      0x3d034fe2u,
};
const uint32_t kWideFma3LogSoftmax[13] = {
      0xbee1608bu, 0xc2afe161u, 0xc2b07afbu, 0xc2b0e161u, 0xc2b1e161u, 0xc2bee161u,
      0xc2c8e161u, 0xc2cee161u, 0xc2dce161u, 0xff800000u, 0xbfb85823u, 0xc01c2c11u,
      0xc05c2c11u,
};
const uint32_t kWideAvx512fSoftmax[13] = {
      0x3f24d791u, 0x0045fe08u, 0x0033d9f7u, 0x002a73d6u, 0x0019bfadu, 0x000009e9u,
      0x00000011u, 0x00000001u, 0x00000000u, 0x00000000u, 0x3e72916au, 0x3db278b9u,
      0x3d034fe2u,
};
const uint32_t kWideAvx512fLogSoftmax[13] = {
      0xbee1608bu, 0xc2afe161u, 0xc2b07afbu, 0xc2b0e161u, 0xc2b1e161u, 0xc2bee161u,
      0xc2c8e161u, 0xc2cee161u, 0xc2dce161u, 0xff800000u, 0xbfb85823u, 0xc01c2c11u,
      0xc05c2c11u,
};

// Runs `op` on `row` as a [1, n] row and as column 0 of an [n, 2] tensor (the strided path)
// and checks both against `expected`.
void check_bits(const char* op, const std::vector<double>& row, const uint32_t* expected) {
  CAPTURE(op);
  std::vector<double> columns;
  for (double v : row) columns.insert(columns.end(), {v, 0.5 * v});
  const int64_t n = int64_t(row.size());
  const Tensor as_row = make_tensor(DType::F32, {1, n}, row);
  const Tensor as_column = make_tensor(DType::F32, {n, 2}, columns);
  const Tensor y_row = OpRunner(op, 13).input(as_row).attr("axis", -1).run(DType::F32);
  const Tensor y_column = OpRunner(op, 13).input(as_column).attr("axis", 0).run(DType::F32);
  for (size_t i = 0; i < row.size(); ++i) {
    CAPTURE(i);
    CHECK(std::bit_cast<uint32_t>(y_row.data<float>()[i]) == expected[i]);
    CHECK(std::bit_cast<uint32_t>(y_column.data<float>()[i * 2]) == expected[i]);
  }
}

// Runs this test binary on one test case with `env` set; returns its exit status and output.
std::pair<int, std::string> run_self(const std::string& env, const char* test_case) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string command = env + " '" + self + "' --test-case='" + test_case + "' 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  REQUIRE(pipe);
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t got = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) {
    output.append(buffer.data(), got);
  }
  return {pclose(pipe.release()), output};
}

constexpr const char* kThisCpuCase =
    "float Softmax and LogSoftmax give the bits of the MLAS kernel of this CPU";

}  // namespace

TEST_CASE("float Softmax and LogSoftmax give the bits of the MLAS kernel of this CPU") {
  const mlas::SumExpKernel kernel = mlas::sum_exp_kernel();
  const bool avx512f = kernel == mlas::SumExpKernel::Avx512F;
  MESSAGE("MLAS sum-exp kernel: " << std::string(mlas::sum_exp_kernel_name(kernel)));
  check_bits("Softmax", lanes_row(), avx512f ? kLanesAvx512fSoftmax : kLanesFma3Softmax);
  check_bits("LogSoftmax", lanes_row(), avx512f ? kLanesAvx512fLogSoftmax : kLanesFma3LogSoftmax);
  check_bits("Softmax", wide_row(), avx512f ? kWideAvx512fSoftmax : kWideFma3Softmax);
  check_bits("LogSoftmax", wide_row(), avx512f ? kWideAvx512fLogSoftmax : kWideFma3LogSoftmax);
}

TEST_CASE("Softmax reproduces both MLAS kernels (NIBBLE_MLAS_SOFTMAX)") {
  for (const std::string kernel : {"fma3", "avx512f"}) {
    CAPTURE(kernel);
    const auto [status, output] = run_self("NIBBLE_MLAS_SOFTMAX=" + kernel, kThisCpuCase);
    CAPTURE(output);
    CHECK(status == 0);
    CHECK(output.find("MLAS sum-exp kernel: " + kernel) != std::string::npos);
  }
  const auto [status, output] = run_self("NIBBLE_MLAS_SOFTMAX=sse2", kThisCpuCase);
  CAPTURE(output);
  CHECK(status != 0);
  CHECK(output.find("NIBBLE_MLAS_SOFTMAX='sse2' is not one of fma3, avx512f") != std::string::npos);
}
