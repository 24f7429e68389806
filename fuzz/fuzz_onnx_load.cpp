// libFuzzer target: ONNX bytes -> load, lowering, shape inference, folding, planning; and when
// every input is static and small, one run on patterned inputs.
//
// Only nibble::Error is an acceptable outcome for bad bytes: any other exception escapes and
// libFuzzer reports it as a crash, like a sanitizer finding.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nibble/nibble.h"

namespace {

// Small enough that no model can make the fuzzer run out of memory (libFuzzer's default RSS
// limit is 2 GiB) or spend long in one run.
constexpr size_t kMaxTensorBytes = size_t{16} << 20;
constexpr int64_t kMaxRunElements = 1 << 16;

// Deterministic non-zero values in [-3, 3], so ops see signs, zeros and repeats.
nibble::Tensor patterned_input(const nibble::TensorInfo& info) {
  nibble::Tensor t(info.dtype, info.shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int value = static_cast<int>(i % 7) - 3;
    switch (info.dtype) {
      case nibble::DType::F32: t.data<float>()[i] = 0.5f * float(value); break;
      case nibble::DType::F64: t.data<double>()[i] = 0.5 * value; break;
      case nibble::DType::I8: case nibble::DType::I4: t.data<int8_t>()[i] = int8_t(value); break;
      case nibble::DType::U8: case nibble::DType::U4: t.data<uint8_t>()[i] = uint8_t(value + 3); break;
      case nibble::DType::I32: t.data<int32_t>()[i] = value; break;
      case nibble::DType::I64: t.data<int64_t>()[i] = value; break;
      case nibble::DType::Bool: t.data<uint8_t>()[i] = uint8_t(i % 2); break;
      default: break;  // zeros
    }
  }
  return t;
}

bool small_static(const std::vector<nibble::TensorInfo>& inputs) {
  int64_t total = 0;
  for (const nibble::TensorInfo& in : inputs) {
    if (!nibble::dtype_supported(in.dtype)) return false;
    int64_t n = 1;
    for (int64_t d : in.shape) {
      if (d < 0 || d > kMaxRunElements) return false;
      n *= d;
      if (n > kMaxRunElements) return false;
    }
    total += n;
  }
  return total <= kMaxRunElements;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nibble::SessionOptions options;
  options.num_threads = 1;
  options.max_tensor_bytes = kMaxTensorBytes;
  try {
    nibble::Session session = nibble::Session::load_bytes(data, size, options);
    if (!small_static(session.inputs())) return 0;
    nibble::NamedTensors inputs;
    for (const nibble::TensorInfo& in : session.inputs()) inputs.emplace_back(in.name, patterned_input(in));
    session.run(inputs);
  } catch (const nibble::Error&) {
    // Rejected with a nibble error: the expected outcome for malformed models.
  }
  return 0;
}
