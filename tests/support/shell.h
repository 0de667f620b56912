#pragma once
// For tests that run programs through the shell and read what they wrote.
#include <filesystem>
#include <string>

namespace onnxpipe::test {

// `text` as one single-quoted shell word.
std::string shell_quote(const std::string& text);

// The whole file, bytes as they are ("" when it cannot be read).
std::string read_file(const std::filesystem::path& path);

}  // namespace onnxpipe::test
