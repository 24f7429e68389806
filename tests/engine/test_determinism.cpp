// Determinism: repeated runs are bit-identical; the integer paths (QDQ W8A8 and W4A8 on
// nibble.QConv, ConvInteger) are bit-identical across thread counts and across the kernel ISAs
// (ref, avx2, avx512, avx512vnni). NIBBLE_ISA is read once per process, so the ISA case runs
// this binary again per ISA and compares the digests the children print.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "kernels/cpu_features.h"
#include "tests/engine/test_determinism_models.h"

using namespace nibble;
using namespace nibble::testing;

namespace {

// FNV-1a over the output bytes: equal digests <=> (almost surely) bit-identical outputs.
uint64_t digest(const Tensor& t) {
  uint64_t h = 1469598103934665603ull;
  const auto* bytes = static_cast<const uint8_t*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  return h;
}

struct IntegerCase {
  const char* name;
  ModelBuilder model;
  DType input_dtype;
};

std::vector<IntegerCase> integer_cases() {
  return {{"qconv_w8a8", qdq_conv_model(-127, 127), DType::F32},
          {"qconv_w4a8", qdq_conv_model(-8, 7), DType::F32},
          {"conv_integer", conv_integer_model(), DType::U8}};
}

Tensor run_with_threads(const ModelBuilder& m, const Tensor& x, int threads) {
  SessionOptions o;
  o.num_threads = threads;
  return m.session(o).run({{"x", x}}).at(0);
}

constexpr const char* kThreadCase = "determinism: integer paths are bit-identical across thread counts";

}  // namespace

TEST_CASE("determinism: repeated runs of one session are bit-identical") {
  std::vector<std::pair<const char*, ModelBuilder>> models = {{"float_conv", float_conv_model()}};
  for (IntegerCase& c : integer_cases()) models.emplace_back(c.name, c.model);
  for (const auto& [name, model] : models) {
    CAPTURE(name);
    SessionOptions o;
    o.num_threads = 2;
    const Session s = model.session(o);
    const TensorInfo& in = s.inputs().at(0);
    const Tensor x = random_tensor(in.dtype, in.shape, 11);
    const Tensor first = s.run({{"x", x}}).at(0);
    for (int rep = 0; rep < 4; ++rep) CHECK(bit_identical(s.run({{"x", x}}).at(0), first));
  }
}

TEST_CASE(kThreadCase) {
  // With NIBBLE_PRINT_DIGESTS set, prints "digest <case> <hex>" for the ISA comparison below.
  const bool print = std::getenv("NIBBLE_PRINT_DIGESTS") != nullptr;
  for (const IntegerCase& c : integer_cases()) {
    CAPTURE(c.name);
    const Tensor x = random_tensor(c.input_dtype, {1, kDetC, kDetH, kDetW}, 21);
    const Tensor one = run_with_threads(c.model, x, 1);
    CHECK(bit_identical(run_with_threads(c.model, x, 2), one));
    CHECK(bit_identical(run_with_threads(c.model, x, 4), one));
    if (print) std::cout << "digest " << c.name << " " << std::hex << digest(one) << std::dec << "\n";
  }
}

TEST_CASE("determinism: integer paths are bit-identical across kernel ISAs") {
  namespace k = nibble::kernels;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::map<std::string, std::string> reference;  // case -> digest under NIBBLE_ISA=ref
  int compared = 0;
  for (k::Isa isa : {k::Isa::Ref, k::Isa::Avx2, k::Isa::Avx512, k::Isa::Avx512Vnni}) {
    if (isa > k::detected_isa()) break;
    const std::string command = std::string("NIBBLE_ISA=") + k::isa_name(isa) +
                                " NIBBLE_PRINT_DIGESTS=1 '" + self + "' --test-case='" + kThreadCase +
                                "' 2>&1";
    CAPTURE(command);
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    REQUIRE(pipe);
    std::string output;
    std::array<char, 4096> buffer;
    while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) output.append(buffer.data(), n);
    CAPTURE(output);
    REQUIRE(pclose(pipe.release()) == 0);
    std::map<std::string, std::string> digests;
    std::istringstream lines(output);
    for (std::string word, name, hex; lines >> word;) {
      if (word == "digest" && lines >> name >> hex) digests[name] = hex;
    }
    REQUIRE(digests.size() == integer_cases().size());
    if (isa == k::Isa::Ref) reference = digests;
    else CHECK_MESSAGE(digests == reference, "ISA " << k::isa_name(isa) << " differs from ref");
    ++compared;
  }
  CHECK(compared >= 2);  // ref and at least avx2 (every CI machine has AVX2)
}
