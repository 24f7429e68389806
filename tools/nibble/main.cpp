// nibble — command-line front end of the engine.
//
// Exit status: 0 on success, 1 when the work failed (bad model, missing file, unsupported op),
// 2 for a command line that does not parse.

#include <cstdio>
#include <exception>
#include <vector>

#include "nibble/error.h"
#include "tools/nibble/commands.h"

namespace {

int report(const char* message, int status) {
  std::fprintf(stderr, "nibble: error: %s\n", message);
  if (status == 2) std::fprintf(stderr, "Run 'nibble --help' for usage.\n");
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nibble: a low-bit CPU inference engine for ONNX models.", "nibble"};
  const std::vector<nibble::cli::Command> commands = {nibble::cli::add_run_command(app),
                                                      nibble::cli::add_zoo_command(app),
                                                      nibble::cli::add_bench_command(app),
                                                      nibble::cli::add_coco_command(app),
                                                      nibble::cli::add_compare_command(app),
                                                      nibble::cli::add_quantize_command(app),
                                                      nibble::cli::add_inspect_command(app)};
  app.footer("Run 'nibble <command> --help' for the options of a command.");

  try {
    app.parse(argc, argv);
    for (const nibble::cli::Command& command : commands)
      if (command.app->parsed()) return command.run();
    return report("no command given", 2);
  } catch (const CLI::Success& help) {
    return app.exit(help);  // --help: prints the help of the command it was given to
  } catch (const CLI::ParseError& e) {
    return report(e.what(), 2);
  } catch (const nibble::cli::UsageError& e) {
    return report(e.what(), 2);
  } catch (const std::exception& e) {
    return report(e.what(), 1);
  }
}
