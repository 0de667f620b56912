#pragma once
// The onnxpipe subcommands: one registration function per subcommand (each in its cmd_<name>.cpp), and what they
// share: the output format, verbosity, logs and progress on stderr.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "onnxpipe/error.h"
#include "printer.h"
#include "progress.h"

namespace onnxpipe::cli {

// Options every subcommand has; set by CLI11 while parsing, read by the commands when they run.
struct CliContext {
  Format format = Format::MD;  // --format: stdout
  int verbosity = 0;           // -v, repeatable
  bool quiet = false;          // -q: no logs, no progress
  // main reports an error and exits with its status; false on the ranks of an MPI job but rank 0 when every rank met
  // the error alike (its arguments): rank 0 alone reports it.
  bool report_errors = true;

  std::unique_ptr<Printer> printer() const { return make_printer(format, std::cout); }
  // A line on stderr, unless -q.
  void log(const std::string& line) const {
    if (!quiet) std::cerr << line << "\n";
  }
  // A line on stderr with -v only.
  void debug(const std::string& line) const {
    if (!quiet && verbosity > 0) std::cerr << line << "\n";
  }
  std::unique_ptr<Progress> progress() const {
    bool tty = ::isatty(STDERR_FILENO) != 0;
    return std::make_unique<Progress>(!quiet && (tty || verbosity > 0), tty);
  }
};

// The CLI's exit status for an error code: 2 usage, 3 verification mismatch, 1 otherwise.
int exit_status(ErrorCode code);
// An error's message in the CLI's terms: an error about an argument of the library (Error::argument()) names the
// flag that sets it ("--dim seq: ...", "give it with --input"); any other error says what the library said.
std::string error_message(const Error& error);

// -v/--verbose, -q/--quiet, --format; main adds them to the app and to every subcommand.
void add_common_options(CLI::App& app, CliContext& context);

void add_inspect_command(CLI::App& app, CliContext& context);
void add_split_command(CLI::App& app, CliContext& context);
void add_verify_command(CLI::App& app, CliContext& context);
void add_run_command(CLI::App& app, CliContext& context);
void add_bench_command(CLI::App& app, CliContext& context);
void add_plot_command(CLI::App& app, CliContext& context);
void add_plan_command(CLI::App& app, CliContext& context);

}  // namespace onnxpipe::cli
