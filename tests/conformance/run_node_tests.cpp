// Runs the official ONNX backend node tests (model.onnx + test_data_set_0/{input,output}_N.pb)
// through nibble and reports passed / failed / unsupported per op.
//
//   nibble_conformance [--dir DIR] [--filter SUBSTRING] [--verbose] [--threads N]
//                      [--check --expected FILE] [--markdown FILE]
//
// --check exits non-zero when a case whose ops nibble registers does not pass and is not listed
// in the expected-failures file (one "case_name  reason" per line, '#' comments).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "engine/ops/op_registry.h"
#include "frontend/onnx/onnx_loader.h"
#include "nibble/nibble.h"
#include "nibble_onnx/onnx.pb.h"
#include "tests/asset_paths.h"

namespace fs = std::filesystem;
using namespace nibble;

namespace {

enum class Outcome { Passed, Failed, Unsupported };

struct CaseResult {
  std::string name;
  std::string group;  // the op for single-node models, else "multi-node"
  bool ops_registered = true;
  Outcome outcome = Outcome::Failed;
  std::string message;
};

std::vector<fs::path> numbered_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int i = 0;; ++i) {
    fs::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    files.push_back(p);
  }
  return files;
}

// ONNX backend-test tolerance: |actual - expected| <= atol + rtol * |expected|.
std::string compare(const Tensor& actual, const Tensor& expected) {
  if (actual.dtype() != expected.dtype()) {
    return std::string("dtype ") + dtype_name(actual.dtype()) + ", expected " + dtype_name(expected.dtype());
  }
  if (actual.shape() != expected.shape()) {
    return "shape " + shape_str(actual.shape()) + ", expected " + shape_str(expected.shape());
  }
  bool is_float = expected.dtype() == DType::F32 || expected.dtype() == DType::F64 ||
                  expected.dtype() == DType::F16;
  constexpr double kRtol = 1e-3, kAtol = 1e-7;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    double a = actual.get_f64(i), e = expected.get_f64(i);
    bool ok;
    if (is_float) {
      ok = (std::isnan(a) && std::isnan(e)) || a == e || std::fabs(a - e) <= kAtol + kRtol * std::fabs(e);
    } else {
      ok = actual.get_i64(i) == expected.get_i64(i);
    }
    if (!ok) {
      std::ostringstream os;
      os << "element " << i << " is " << a << ", expected " << e;
      return os.str();
    }
  }
  return "";
}

CaseResult run_case(const fs::path& dir, int threads) {
  CaseResult r;
  r.name = dir.filename().string();
  fs::path model_path = dir / "model.onnx";
  // Group by op, and note whether nibble registers every op the case uses.
  {
    onnx::ModelProto model;
    std::string bytes = onnx_frontend::read_file(model_path.string());
    if (model.ParseFromString(bytes)) {
      std::set<std::string> ops;
      for (const auto& n : model.graph().node()) {
        std::string domain = n.domain() == "ai.onnx" ? "" : n.domain();
        ops.insert(domain.empty() ? n.op_type() : domain + "." + n.op_type());
        if (!OpRegistry::instance().find(domain, n.op_type())) r.ops_registered = false;
      }
      r.group = ops.size() == 1 ? *ops.begin() : "multi-node";
    }
  }
  try {
    SessionOptions options;
    options.num_threads = threads;
    // The session first: it refuses non-tensor (sequence, optional) inputs whose .pb files are
    // not TensorProtos.
    Session session = Session::load(model_path.string(), options);
    fs::path data = dir / "test_data_set_0";
    std::vector<Tensor> inputs, expected;
    for (const auto& p : numbered_files(data, "input_")) inputs.push_back(onnx_frontend::load_tensor_file(p.string()));
    for (const auto& p : numbered_files(data, "output_")) expected.push_back(onnx_frontend::load_tensor_file(p.string()));
    if (session.inputs().size() != inputs.size()) {
      throw Error(ErrorKind::Unsupported, "the model takes " + std::to_string(session.inputs().size()) +
                                              " inputs, the test gives " + std::to_string(inputs.size()));
    }
    NamedTensors feed;
    for (size_t i = 0; i < inputs.size(); ++i) feed.emplace_back(session.inputs()[i].name, inputs[i]);
    std::vector<Tensor> actual = session.run(feed);
    if (actual.size() < expected.size()) throw Error(ErrorKind::Internal, "too few outputs");
    for (size_t i = 0; i < expected.size(); ++i) {
      std::string diff = compare(actual[i], expected[i]);
      if (!diff.empty()) {
        r.message = "output " + std::to_string(i) + ": " + diff;
        return r;
      }
    }
    r.outcome = Outcome::Passed;
  } catch (const Error& e) {
    r.outcome = e.kind() == ErrorKind::Unsupported ? Outcome::Unsupported : Outcome::Failed;
    r.message = e.what();
  } catch (const std::exception& e) {
    r.message = std::string("exception: ") + e.what();
  }
  return r;
}

std::map<std::string, std::string> read_expected(const std::string& path) {
  std::map<std::string, std::string> expected;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string name, reason;
    ls >> name;
    std::getline(ls, reason);
    expected[name] = reason;
  }
  return expected;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = testing::assets_dir() / "onnx-node-tests" / "v1.22.0";
  std::string filter, expected_path, markdown_path;
  bool verbose = false, check = false;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "missing value after " << a << "\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--dir") dir = next();
    else if (a == "--filter") filter = next();
    else if (a == "--verbose") verbose = true;
    else if (a == "--check") check = true;
    else if (a == "--expected") expected_path = next();
    else if (a == "--markdown") markdown_path = next();
    else if (a == "--threads") threads = std::stoi(next());
    else {
      std::cerr << "usage: nibble_conformance [--dir DIR] [--filter S] [--verbose] [--threads N] "
                   "[--check --expected FILE] [--markdown FILE]\n";
      return 2;
    }
  }
  if (!fs::is_directory(dir)) {
    std::cout << "SKIPPED: ONNX node tests not found at " << dir << " (set NIBBLE_ASSETS)\n";
    return 0;
  }
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().find(filter) != std::string::npos) {
      cases.push_back(e.path());
    }
  }
  std::sort(cases.begin(), cases.end());

  std::map<std::string, std::string> expected = read_expected(expected_path);
  struct Counts { int passed = 0, failed = 0, unsupported = 0; };
  std::map<std::string, Counts> per_group;
  Counts total;
  std::vector<CaseResult> regressions;
  std::vector<std::string> now_passing;
  for (const auto& c : cases) {
    CaseResult r = run_case(c, threads);
    Counts& g = per_group[r.group];
    int Counts::*field = r.outcome == Outcome::Passed ? &Counts::passed
                         : r.outcome == Outcome::Failed ? &Counts::failed : &Counts::unsupported;
    ++(g.*field);
    ++(total.*field);
    if (verbose || (r.outcome != Outcome::Passed && r.ops_registered)) {
      const char* tag = r.outcome == Outcome::Passed ? "PASS" : r.outcome == Outcome::Failed ? "FAIL" : "UNSUPPORTED";
      if (verbose || !expected.count(r.name)) std::cout << tag << " " << r.name << ": " << r.message << "\n";
    }
    if (r.ops_registered && r.outcome != Outcome::Passed && !expected.count(r.name)) regressions.push_back(r);
    if (r.outcome == Outcome::Passed && expected.count(r.name)) now_passing.push_back(r.name);
  }

  std::ostringstream table;
  table << "| op | passed | failed | unsupported |\n|---|---:|---:|---:|\n";
  for (const auto& [group, n] : per_group) {
    table << "| " << group << " | " << n.passed << " | " << n.failed << " | " << n.unsupported << " |\n";
  }
  std::cout << "\n" << table.str();
  std::cout << "\ncases: " << cases.size() << ", ops registered: " << OpRegistry::instance().op_names().size() << "\n";
  if (!markdown_path.empty()) std::ofstream(markdown_path) << table.str();
  for (const auto& name : now_passing) std::cout << "note: " << name << " now passes; remove it from the expected failures\n";
  if (check && !regressions.empty()) {
    std::cout << regressions.size() << " case(s) of supported ops did not pass and are not in the expected-failures list\n";
  }
  std::cout << "conformance: " << total.passed << " cases pass, " << total.failed << " fail, " << total.unsupported << " unsupported\n";
  return check && !regressions.empty() ? 1 : 0;
}
