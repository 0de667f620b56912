// onnxpipe plot RESULTS.csv -o report.png: draws a bench CSV as the seed's grid of plots with scripts/plot.py
// (matplotlib, from Debian's python3-matplotlib), run by /usr/bin/python3 unless told otherwise.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "onnxpipe/error.h"

extern char** environ;

namespace onnxpipe::cli {

namespace {

namespace fs = std::filesystem;

struct PlotArgs {
  std::string results;
  std::string output;
  bool svg = false;
  std::string title;
  std::string python = "/usr/bin/python3";
  std::string script;
};

// Runs argv[0] with argv (no shell), stdout and stderr to ours or to /dev/null; returns its exit status (-1: killed
// by a signal). Error(IO) when it cannot be started.
int run_program(const std::vector<std::string>& argv, bool quiet) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (quiet) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = 0;
  const int failed = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (failed != 0) throw Error(ErrorCode::IO, argv[0] + ": cannot run it");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(ErrorCode::IO, argv[0] + ": lost track of it");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// True when `path` is `dir` or lies below it.
bool is_within(const fs::path& path, const fs::path& dir) {
  std::error_code path_error, dir_error;
  const fs::path p = fs::weakly_canonical(path, path_error);
  const fs::path d = fs::weakly_canonical(dir, dir_error);
  if (path_error || dir_error) return false;
  return std::mismatch(d.begin(), d.end(), p.begin(), p.end()).first == d.end();
}

// plot.py where `cmake --install` puts it, relative to this executable (PREFIX/bin/onnxpipe ->
// PREFIX/share/onnxpipe/plot.py), so that an installed prefix works wherever it is moved; for a binary of the build
// tree (the CLI, or a test calling this command), scripts/plot.py of the source tree it was built from.
std::string find_script() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (error) throw Error(ErrorCode::IO, "plot: cannot tell where this executable is (/proc/self/exe): pass --script");
  std::vector<fs::path> candidates = {exe.parent_path().parent_path() / "share" / "onnxpipe" / "plot.py"};
  if (is_within(exe, ONNXPIPE_BINARY_DIR)) candidates.push_back(fs::path(ONNXPIPE_SOURCE_DIR) / "scripts" / "plot.py");
  std::string looked;
  for (const fs::path& path : candidates) {
    if (fs::is_regular_file(path)) return path.string();
    looked += (looked.empty() ? "" : ", ") + path.string();
  }
  throw Error(ErrorCode::IO, "plot: plot.py not found (looked at " + looked + "): pass --script");
}

void run_plot(const CliContext& context, const PlotArgs& args) {
  const std::string ext = fs::path(args.output).extension().string();
  if (ext != ".png" && ext != ".svg") {
    throw Error(ErrorCode::USAGE, "-o " + args.output + ": the name must end in .png or .svg");
  }
  if (!fs::is_regular_file(args.results)) throw Error(ErrorCode::IO, args.results + ": no such file");
  const std::string script = args.script.empty() ? find_script() : args.script;
  if (!fs::is_regular_file(script)) throw Error(ErrorCode::IO, "--script " + script + ": no such file");
  if (::access(args.python.c_str(), X_OK) != 0) {
    throw Error(ErrorCode::IO,
                "plot: no Python at " + args.python + " (install python3 and python3-matplotlib, or pass --python)");
  }
  if (run_program({args.python, "-c", "import matplotlib, numpy"}, true) != 0) {
    throw Error(ErrorCode::RUNTIME, "plot: " + args.python +
                                        " cannot import matplotlib and numpy (apt-get install python3-matplotlib "
                                        "python3-numpy, or pass --python)");
  }
  std::vector<std::string> argv = {args.python, script, args.results, "-o", args.output};
  if (args.svg) argv.push_back("--svg");
  if (!args.title.empty()) {
    argv.push_back("--title");
    argv.push_back(args.title);
  }
  context.debug("plot: " + args.python + " " + script);
  const int status = run_program(argv, context.quiet);
  if (status != 0) {
    throw Error(ErrorCode::RUNTIME, "plot: " + script + " failed (exit " + std::to_string(status) + ")" +
                                        (context.quiet ? "; run without -q to see why" : ""));
  }
  std::vector<std::string> written = {args.output};
  if (args.svg && ext == ".png") written.push_back(fs::path(args.output).replace_extension(".svg").string());
  auto printer = context.printer();
  printer->begin_table("plot", {{"file", FieldType::STRING}, {"bytes", FieldType::INT}});
  for (const std::string& file : written) {
    std::error_code error;
    const auto bytes = fs::file_size(file, error);
    if (error || bytes == 0) throw Error(ErrorCode::IO, "plot: " + file + " was not written");
    printer->row({file, static_cast<int64_t>(bytes)});
  }
  printer->end_table();
  printer->finish();
}

}  // namespace

void add_plot_command(CLI::App& app, CliContext& context) {
  auto args = std::make_shared<PlotArgs>();
  CLI::App* command = app.add_subcommand(
      "plot",
      "Draw a bench CSV as one grid: time and time per image, gain over sequence, throughput against its "
      "bound, latency, waits, busy share and where each stage's time goes");
  command->add_option("RESULTS", args->results, "CSV written by onnxpipe bench --format csv")->required();
  command->add_option("-o,--output", args->output, "image to write: .png, or .svg")->required();
  command->add_flag("--svg", args->svg, "also write an .svg beside the .png");
  command->add_option("--title", args->title, "figure title (default: the file name and what every row shares)");
  command->add_option("--python", args->python, "Python 3 with matplotlib and numpy")->capture_default_str();
  command->add_option(
      "--script", args->script,
      "plot script (default: ../share/onnxpipe/plot.py beside the executable; for the build tree's, the source "
      "tree's scripts/plot.py)");
  command->callback([&context, args] { run_plot(context, *args); });
}

}  // namespace onnxpipe::cli
