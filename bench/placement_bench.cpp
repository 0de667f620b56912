// Placement benchmark (prints figures, asserts nothing): for the seed's models split in 2 on cpu:1 stages, each
// stage's predicted memory (placement.h's model, with the constants the split measured on this machine and the
// activations its dry runs measured; the static estimate they replaced beside them) against what loading and running
// its piece measured: the resident memory the session adds (weights, ORT's prepacked copies, arena) plus the inputs it
// holds while it runs, and the arena's peak (MaxInUse). Each piece is measured in a child process of its own, on the
// values the pieces before it make (run first, then freed), loaded once first so that ORT's code pages are resident
// and do not count, with freed heap returned to the system before each reading.
// Then the throughput cost of caps: the bottleneck of the split under the tightest caps that still fit (in steps of
// 5% of the uncapped split's larger stage), over the uncapped one.
//
//   placement_bench [--models DIR]
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "measure.h"
#include "onnxpipe/placement.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "runtime.h"

namespace fs = std::filesystem;
using namespace onnxpipe;

namespace {

int64_t resident_bytes() {
  malloc_trim(0);
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

struct Measured {
  int64_t loaded = -1, ran = -1, arena_peak = -1;  // RSS added by the session, after loading and after one run
};

// Loads and runs piece k of `plan` in a child process, on what the pieces before it make; its figures come back
// through a pipe.
Measured measure_piece(const std::string& dir, const Plan& plan, int k) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    Measured m;
    const std::string path = (fs::path(dir) / plan.pieces[k].file).string();
    try {
      detail::SessionConfig config;
      config.device = "cpu:1";
      VerifyOptions options;
      options.dims = plan.dims;
      std::map<std::string, detail::Value> pool;
      for (auto& [name, tensor] : make_inputs(plan.model_inputs, options))
        pool.emplace(name, detail::Value::from_tensor(std::move(tensor)));
      detail::run_piece_chain(dir, {plan.pieces.begin(), plan.pieces.begin() + k}, config, pool);
      int64_t inputs = 0;  // held by the stage while it runs, made before the readings start
      for (const ValueDesc& input : plan.pieces[k].inputs) inputs += pool.at(input.name).byte_size();
      { detail::Session warm(path, config); }  // ORT's code and globals, shared by every stage of a process
      const int64_t before = resident_bytes();
      detail::Session session(path, config);
      m.loaded = resident_bytes() - before;
      detail::run_on(session, pool);
      m.ran = resident_bytes() - before + inputs;
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
      "| model | stage | nodes | weights MiB | resident weights MiB | act estimate MiB | act dry run MiB | overhead "
      "MiB | predicted session MiB | RSS loaded MiB | RSS after run + inputs MiB | arena peak MiB | measured / "
      "predicted |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<std::string> cap_rows;
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
    options.placement.devices = parse_devices("cpu:1,cpu:1");  // measures the memory constants
    const Plan plan = split_model(model.string(), options);
    SplitOptions reuse = options;
    reuse.costs_file = (fs::path(options.output_dir) / "costs.json").string();
    const PlacementReport report = plan_placement(model.string(), reuse, options.placement);
    for (const StageMemory& stage : report.stages) {
      const PieceDesc& piece = plan.pieces[stage.index];
      const Measured m = measure_piece(options.output_dir, plan, stage.index);
      // One session holds its weights, activations and overhead; the queued inputs are the pipeline's.
      const int64_t session = stage.total - stage.in_flight;
      const int64_t measured = m.ran >= 0 ? m.ran : m.loaded;
      const int64_t predicted = m.ran >= 0 ? session : session - stage.activations;
      std::printf("| %s | %d | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f%s |\n",
                  name.c_str(), stage.index, static_cast<long long>(stage.node_count), mib(piece.weight_bytes),
                  mib(stage.weights), mib(stage.activations_estimate), mib(stage.activations), mib(stage.overhead),
                  mib(session), mib(m.loaded), mib(m.ran), mib(m.arena_peak),
                  measured >= 0 ? double(measured) / double(predicted) : -1.0, m.ran >= 0 ? "" : " (loaded)");
      std::fflush(stdout);
    }
    // Caps the uncapped split does not fit: the tightest of 95%, 90% ... 50% of its larger stage's need that some
    // split still fits.
    int64_t largest = 0;
    for (const StageMemory& stage : report.stages) largest = std::max(largest, stage.total);
    std::string row = "| " + name + " | none of 95% ... 50% fits | |";
    for (int percent = 95; percent >= 50; percent -= 5) {
      const int64_t cap = largest * percent / 100;
      PlacementOptions placement;
      placement.devices = parse_devices("cpu:1=" + std::to_string(cap) + ",cpu:1=" + std::to_string(cap));
      try {
        const PlacementReport capped = plan_placement(model.string(), reuse, placement);
        char text[256];
        std::snprintf(text, sizeof text, "| %s | %.1f (%d%%) | %.3f |", name.c_str(), mib(cap), percent,
                      capped.predicted_max_cost / report.predicted_max_cost);
        row = text;
      } catch (const Error&) {
        break;
      }
    }
    cap_rows.push_back(row);
    fs::remove_all(options.output_dir);
  }
  std::printf(
      "\n| model | tightest cap per device MiB (of the uncapped larger stage) | bottleneck with caps / without |\n");
  std::printf("|---|---|---|\n");
  for (const std::string& row : cap_rows) std::printf("%s\n", row.c_str());
  return 0;
}
