#pragma once
// For tests that run programs through the shell and read what they wrote.
#include <filesystem>
#include <string>

namespace onnxpipe::test {

// `text` as one single-quoted shell word.
std::string shell_quote(const std::string& text);

// The whole file, bytes as they are ("" when it cannot be read).
std::string read_file(const std::filesystem::path& path);

// How a program run through the shell ended, and what it wrote.
struct CommandResult {
  int status = -1;  // its exit status; -1 when it did not exit (killed by a signal, or not started)
  std::string out;
  std::string err;
};

// Runs `command` through the shell: stdout is read from a pipe, stderr goes to `err_file` and is read back.
CommandResult run_command(const std::string& command, const std::filesystem::path& err_file);

}  // namespace onnxpipe::test
