// onnxpipe: the command-line tool. Subcommands register themselves (commands.h); errors are reported here, once:
// "error: <message>" on stderr, exit 2 for usage errors, 3 for a verification mismatch, 1 otherwise.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "onnxpipe/error.h"
#include "onnxpipe/log.h"

namespace onnxpipe::cli {

void add_common_options(CLI::App& app, CliContext& context) {
  app.add_option_function<std::string>(
         "--format", [&context](const std::string& name) { context.format = format_from_name(name); },
         "stdout format: md, csv, json or jsonl")
      ->check(CLI::IsMember({"md", "csv", "json", "jsonl"}))
      ->default_str("md");
  app.add_flag("-v,--verbose", context.verbosity, "more logs on stderr (repeatable)");
  app.add_flag("-q,--quiet", context.quiet, "no logs or progress on stderr");
}

}  // namespace onnxpipe::cli

namespace {

// Errors are one line, whatever the library or ONNX Runtime put in them.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace onnxpipe::cli;
  CLI::App app("Split an ONNX model into balanced pieces that reproduce it, and run them as a pipeline.", "onnxpipe");
  app.set_version_flag("--version", std::string("onnxpipe ") + ONNXPIPE_COMMIT);
  app.require_subcommand(1);
  CliContext context;
  add_common_options(app, context);
  // The library's messages go to stderr as -q / -v say; read when a message comes, so after parsing.
  onnxpipe::set_log_callback(onnxpipe::LogLevel::DEBUG, [&context](onnxpipe::LogLevel level, const std::string& text) {
    switch (level) {
      case onnxpipe::LogLevel::DEBUG:
        return context.debug(text);
      case onnxpipe::LogLevel::INFO:
        return context.log(text);
      default:
        return context.log(std::string(onnxpipe::log_level_name(level)) + ": " + text);
    }
  });

  add_inspect_command(app, context);
  add_split_command(app, context);
  add_verify_command(app, context);
  add_run_command(app, context);
  add_bench_command(app, context);
  add_plot_command(app, context);
  add_plan_command(app, context);

  for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
    add_common_options(*command, context);
  }

  try {
    // The subcommand's callback runs the command.
    app.parse(argc, argv);
    return 0;
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    // CLI11 reports an unknown subcommand as a missing one: name it.
    std::vector<std::string> rest = app.remaining();
    std::string message = app.get_subcommands().empty() && !rest.empty() && rest[0][0] != '-'
                              ? "unknown subcommand '" + rest[0] + "'"
                              : one_line(e.what());
    std::cerr << "error: " << message << " (see onnxpipe --help)\n";
    return onnxpipe::cli::exit_status(onnxpipe::ErrorCode::USAGE);
  } catch (const onnxpipe::Error& e) {
    // mpirun ends the job as soon as a process exits non-zero: a rank that leaves the report to rank 0 exits 0, so
    // that rank 0 gets to say why (and gives the job its status).
    if (!context.report_errors) return 0;
    std::cerr << "error: " << one_line(error_message(e)) << "\n";
    return onnxpipe::cli::exit_status(e.code());
  } catch (const std::exception& e) {
    std::cerr << "error: internal: " << one_line(e.what()) << "\n";
    return 1;
  }
}
