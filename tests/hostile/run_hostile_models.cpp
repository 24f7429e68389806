// Loads (and, when loading succeeds, runs) every model of the hostile catalogue written by
// make_hostile_models.py and checks that each fails with its expected ErrorKind and message.
//
//   nibble_hostile_models DIR     (DIR/manifest.tsv: name, file, kind, message substring)
//
// Prints one line per model (name -> error) and the count; exits 1 on any mismatch. A crash or
// hang fails the ctest that runs it, which is the point: no model may cause either.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nibble/nibble.h"

namespace {

// The allocation limit the catalogue is written against (MAX_TENSOR_BYTES in the script).
constexpr size_t kMaxTensorBytes = size_t{64} << 20;

struct Expected {
  std::string name, file, kind, needle;
};

const char* kind_name(nibble::ErrorKind kind) {
  switch (kind) {
    case nibble::ErrorKind::InvalidModel: return "InvalidModel";
    case nibble::ErrorKind::Unsupported: return "Unsupported";
    case nibble::ErrorKind::InvalidArgument: return "InvalidArgument";
    case nibble::ErrorKind::Io: return "Io";
    case nibble::ErrorKind::Internal: return "Internal";
  }
  return "?";
}

std::vector<Expected> read_manifest(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::vector<Expected> cases;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    Expected e;
    if (!std::getline(fields, e.name, '\t') || !std::getline(fields, e.file, '\t') ||
        !std::getline(fields, e.kind, '\t') || !std::getline(fields, e.needle)) {
      throw std::runtime_error("malformed manifest line: " + line);
    }
    cases.push_back(e);
  }
  return cases;
}

// Loads the model and runs it once on zero inputs (dynamic dimensions set to 1). Returns the
// error it gives, or std::nullopt-like empty kind when it loads and runs cleanly.
struct Outcome {
  std::string kind;  // "" when no error
  std::string message;
};

Outcome load_and_run(const std::string& path) {
  nibble::SessionOptions options;
  options.num_threads = 1;
  options.max_tensor_bytes = kMaxTensorBytes;
  try {
    nibble::Session session = nibble::Session::load(path, options);
    nibble::NamedTensors inputs;
    for (const nibble::TensorInfo& in : session.inputs()) {
      nibble::Shape shape = in.shape;
      for (int64_t& d : shape) d = d < 0 ? 1 : d;
      inputs.emplace_back(in.name, nibble::Tensor(in.dtype, shape));
    }
    session.run(inputs);
    return {};
  } catch (const nibble::Error& e) {
    std::string message = e.what();
    // Load errors start with the file's path, which holds the model's name: match after it.
    if (message.rfind(path + ": ", 0) == 0) message = message.substr(path.size() + 2);
    return {kind_name(e.kind()), message};
  } catch (const std::exception& e) {
    return {"std::exception (not a nibble::Error)", e.what()};
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR (written by tests/hostile/make_hostile_models.py)\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::vector<Expected> cases;
  try {
    cases = read_manifest(dir / "manifest.tsv");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  int mismatches = 0;
  for (const Expected& c : cases) {
    const Outcome got = load_and_run((dir / c.file).string());
    const bool ok = got.kind == c.kind && got.message.find(c.needle) != std::string::npos;
    if (got.kind.empty()) {
      std::printf("FAIL %s -> loaded and ran without an error (expected %s: '%s')\n", c.name.c_str(),
                  c.kind.c_str(), c.needle.c_str());
    } else if (!ok) {
      std::printf("FAIL %s -> %s: %s (expected %s: '%s')\n", c.name.c_str(), got.kind.c_str(),
                  got.message.c_str(), c.kind.c_str(), c.needle.c_str());
    } else {
      std::printf("ok   %s -> %s: %s\n", c.name.c_str(), got.kind.c_str(), got.message.c_str());
    }
    mismatches += ok ? 0 : 1;
  }
  std::printf("%zu hostile models: %zu gave the expected error, %d did not\n", cases.size(),
              cases.size() - size_t(mismatches), mismatches);
  return mismatches == 0 && !cases.empty() ? 0 : 1;
}
