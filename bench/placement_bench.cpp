// Placement benchmark (prints figures, asserts nothing): for the seed's models split in 2 on cpu:1 stages, each
// stage's predicted memory (placement.h's model) beside what loading and running its piece measured: the resident
// memory the session adds (weights, ORT's prepacked copies, arena) and the arena's peak (MaxInUse). Each piece is
// measured in a child process of its own, so that one piece's freed memory does not hide the next one's.
//
//   placement_bench [--models DIR]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "onnxpipe/placement.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "runtime.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

struct Measured {
  int64_t loaded = -1, ran = -1, arena_peak = -1;  // RSS added by the session, after loading and after one run
};

// Loads and runs one piece in a child process; its figures come back through a pipe.
Measured measure_piece(const std::string& path, const std::vector<ValueDesc>& inputs,
                       const std::map<std::string, int64_t>& dims) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    Measured m;
    try {
      VerifyOptions options;
      for (const ValueDesc& input : inputs)  // only the dims this piece's inputs carry
        for (const Dim& dim : input.dims)
          if (dims.count(dim.param)) options.dims[dim.param] = dims.at(dim.param);
      const std::map<std::string, Tensor> tensors = make_inputs(inputs, options);
      const int64_t before = resident_bytes();
      detail::SessionConfig config;
      config.device = "cpu:1";
      detail::Session session(path, config);
      m.loaded = resident_bytes() - before;
      session.run(tensors);
      m.ran = resident_bytes() - before;
      const auto stats = session.memory_stats();
      if (stats.count("MaxInUse")) m.arena_peak = stats.at("MaxInUse");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), e.what());
    }
    (void)!write(fds[1], &m, sizeof m);
    _exit(0);
  }
  close(fds[1]);
  Measured m;
  if (read(fds[0], &m, sizeof m) != sizeof m) m = {};
  close(fds[0]);
  waitpid(child, nullptr, 0);
  return m;
}

double mib(int64_t bytes) { return bytes < 0 ? -1 : bytes / 1048576.0; }

}  // namespace

int main(int argc, char** argv) {
  fs::path models = "models";
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--models") models = argv[++i];
  std::printf(
      "| model | stage | nodes | weights MiB | act MiB | in flight MiB | overhead MiB | predicted MiB | "
      "RSS loaded MiB | RSS after run MiB | arena peak MiB | measured / predicted |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string name : {"resnet18", "mobilenet_v2", "gpt2"}) {
    const fs::path model = models / (name + ".onnx");
    if (!fs::exists(model)) {
      std::fprintf(stderr, "%s absent: skipped\n", model.c_str());
      continue;
    }
    SplitOptions options;
    options.parts = 2;
    options.balance = Balance::FLOPS;
    if (name == "gpt2") options.dims = {{"seq", 8}};
    options.output_dir = (fs::temp_directory_path() / ("onnxpipe_placement_bench_" + name)).string();
    options.force = true;
    options.placement.devices = parse_devices("cpu:1,cpu:1");
    const PlacementReport report = plan_placement(model.string(), options, options.placement);
    const Plan plan = split_model(model.string(), options);
    for (const StageMemory& stage : report.stages) {
      const PieceDesc& piece = plan.pieces[stage.index];
      const Measured m = measure_piece((fs::path(options.output_dir) / piece.file).string(), piece.inputs, plan.dims);
      std::printf("| %s | %d | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n", name.c_str(),
                  stage.index, static_cast<long long>(stage.node_count), mib(stage.weights), mib(stage.activations),
                  mib(stage.in_flight), mib(stage.overhead), mib(stage.total), mib(m.loaded), mib(m.ran),
                  mib(m.arena_peak), m.ran >= 0 ? double(m.ran) / double(stage.total) : -1.0);
      std::fflush(stdout);
    }
    fs::remove_all(options.output_dir);
  }
  return 0;
}
