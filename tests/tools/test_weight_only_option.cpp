// --weight-only-activations (nibble bench / run / compare / coco / inspect): the two modes by
// name, float by default, anything else refused at parse time.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tools/nibble/run_common.h"

using nibble::WeightOnlyActivations;

namespace {

// Parses `args` (after the program name) into a fresh option.
WeightOnlyActivations parse(std::vector<std::string> args) {
  CLI::App app;
  WeightOnlyActivations value = WeightOnlyActivations::Float;
  nibble::cli::add_weight_only_activations_option(app, value);
  args.insert(args.begin(), "nibble");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  app.parse(int(argv.size()), argv.data());
  return value;
}

}  // namespace

TEST_CASE("--weight-only-activations takes float or int16") {
  CHECK(parse({}) == WeightOnlyActivations::Float);
  CHECK(parse({"--weight-only-activations", "float"}) == WeightOnlyActivations::Float);
  CHECK(parse({"--weight-only-activations", "int16"}) == WeightOnlyActivations::Int16);
  CHECK(parse({"--weight-only-activations=int16"}) == WeightOnlyActivations::Int16);
  CHECK_THROWS_AS(parse({"--weight-only-activations", "int8"}), CLI::ValidationError);
  CHECK_THROWS_AS(parse({"--weight-only-activations", "1"}), CLI::ValidationError);
}
