// Subcommands of the `nibble` CLI. Each adds itself to the CLI11 app; main() parses the command
// line and calls the handler of the subcommand that was given.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>

namespace nibble::cli {

// A command line that parsed but makes no sense (exit status 2, like CLI11's parse errors).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Command {
  CLI::App* app;             // the subcommand; app->parsed() tells whether it was given
  std::function<int()> run;  // returns the exit status; throws nibble::Error or UsageError
};

Command add_run_command(CLI::App& nibble);
Command add_zoo_command(CLI::App& nibble);
Command add_bench_command(CLI::App& nibble);
Command add_coco_command(CLI::App& nibble);
Command add_compare_command(CLI::App& nibble);
Command add_quantize_command(CLI::App& nibble);
Command add_inspect_command(CLI::App& nibble);

}  // namespace nibble::cli
