#pragma once
// What the fuzz targets share. The readers take paths, so each input is written to a file in a private temporary
// directory first. An onnxpipe::Error is the expected answer to bad input; anything else (another exception type, a
// crash, a sanitizer report, a leak, a hang) is a finding, so every other exception is left to escape to libFuzzer.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "onnxpipe/error.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe::fuzz {

// Writes the input to DIR/name (DIR made once per process, removed at exit) and returns the path. DIR is in
// $FUZZ_TMPDIR, else /dev/shm (a disk file rewritten per input holds a target to a few hundred runs a second).
inline const std::string& input_file(const std::string& name, const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    const char* tmp = std::getenv("FUZZ_TMPDIR");
    if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string pattern = std::string(tmp) + "/onnxpipe_fuzz_XXXXXX";
    if (!mkdtemp(pattern.data())) std::abort();
    return pattern;
  }();
  static std::string path;
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit([] {
      std::remove(path.c_str());
      rmdir(dir.c_str());
    });
  }
  path = dir + "/" + name;
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file || std::fwrite(data, 1, size, file) != size || std::fclose(file) != 0) std::abort();
  return path;
}

// Runs `body`; an onnxpipe::Error is an accepted outcome. Returns whether the body finished without one.
template <typename Fn>
bool accepts(Fn&& body) {
  try {
    body();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// A property that must hold: a report and abort (libFuzzer saves the input) when it does not.
inline void require(bool holds, const char* what) {
  if (holds) return;
  std::fprintf(stderr, "fuzz property broken: %s\n", what);
  std::abort();
}

// A tensor reader's target: the input as the file `name`; what `read` returns must pass check_tensor.
inline void read_consistent_tensor(const std::string& name, Tensor (*read)(const std::string&), const uint8_t* data,
                                   size_t size) {
  const std::string& path = input_file(name, data, size);
  Tensor tensor;
  if (!accepts([&] { tensor = read(path); })) return;
  require(accepts([&] { check_tensor(name, tensor); }), "the reader returns a consistent tensor");
}

}  // namespace onnxpipe::fuzz
