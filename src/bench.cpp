#include "bench.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <future>
#include <limits>
#include <map>

#include "batching.h"
#include "model_io.h"
#include "onnxpipe/error.h"
#include "onnxpipe/verify.h"
#include "runtime.h"
#include "stats.h"
#include "trace.h"

namespace onnxpipe::detail {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMismatchesListed = 5;

std::string trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    const size_t at = text.find(separator, start);
    items.push_back(trim(text.substr(start, at == std::string::npos ? std::string::npos : at - start)));
    if (at == std::string::npos) return items;
    start = at + 1;
  }
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

int sweep_number(const std::string& text, const std::string& spec) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(ErrorCode::USAGE, "--images '" + spec + "': '" + text + "' is not a positive integer " +
                                      "(expected N, A:B or A:B:STEP, comma-separated)");
  }
  if (text.size() > 7) throw Error(ErrorCode::USAGE, "--images '" + spec + "': " + text + " images is too many");
  const int value = std::stoi(text);
  if (value < 1) throw Error(ErrorCode::USAGE, "--images '" + spec + "': counts start at 1");
  return value;
}

std::string make_temp_dir_name() {
  static std::atomic<int> counter{0};
  return (fs::temp_directory_path() / ("onnxpipe_bench_" + std::to_string(getpid()) + "_" + std::to_string(counter++)))
      .string();
}

// What one measured run gave.
struct RunOutcome {
  double seconds = 0;
  std::vector<TensorMap> outputs;  // per image
  std::vector<double> admitted;    // per request, steady_now_us() when submit returned
  std::vector<StageRecord> records;
  double origin = 0;  // the run's start on the records' clock
  double offset = 0;  // records' clock to steady_now_us()
};

// The first n images (cycling when there are fewer), as requests of one image or as one batch.
std::vector<TensorMap> take_images(const std::vector<TensorMap>& images, int n) {
  std::vector<TensorMap> taken;
  taken.reserve(n);
  for (int i = 0; i < n; ++i) taken.push_back(images[i % images.size()]);
  return taken;
}

// Runs n images through the pipeline once: all submitted at once (back-pressure at max_inflight), or as one batch cut
// into micro-batches. Inputs are copied before the clock starts.
RunOutcome run_once(Pipeline& pipeline, TraceObserver& recorder, const std::vector<TensorMap>& images, int n,
                    int micro_batch, int64_t rows_per_image) {
  RunOutcome outcome;
  std::vector<TensorMap> requests = take_images(images, n);
  if (micro_batch == 0) {
    std::vector<std::future<TensorMap>> futures;
    futures.reserve(n);
    outcome.admitted.reserve(n);
    recorder.start();
    const double start = steady_now_us();
    for (TensorMap& request : requests) {
      futures.push_back(pipeline.submit(std::move(request)));
      outcome.admitted.push_back(steady_now_us());
    }
    for (auto& future : futures) outcome.outputs.push_back(future.get());
    outcome.seconds = (steady_now_us() - start) / 1e6;
  } else {
    const TensorMap batch = concat_batches(requests);
    const int64_t rows = batch_size(batch);
    const int64_t parts = (rows + micro_batch - 1) / micro_batch;
    recorder.start();
    const double start = steady_now_us();
    const TensorMap answer = pipeline.run_batch(batch, micro_batch);
    outcome.seconds = (steady_now_us() - start) / 1e6;
    outcome.admitted.assign(static_cast<size_t>(parts), start);
    outcome.outputs = split_batch(answer, rows_per_image);
  }
  recorder.stop();
  outcome.records = recorder.records();
  outcome.origin = recorder.origin_us();
  outcome.offset = recorder.clock_offset_us();
  return outcome;
}

// The seed's per-stage counters of one run (microseconds), and the stages' work.
struct StageSums {
  double wait0 = 0, wait = 0, copy1 = 0, copy2 = 0, run = 0, ttime = 0;
  double copied_bytes = 0;
  int64_t requests = 0;
};

std::vector<StageSums> stage_sums(const RunOutcome& run, int stages) {
  std::vector<StageSums> sums(stages);
  std::vector<double> first_begin(stages, std::numeric_limits<double>::infinity());
  for (const StageRecord& r : run.records) {
    if (r.stage < 0 || r.stage >= stages) continue;
    StageSums& s = sums[r.stage];
    // A wait that began before the run (the stage idle since the last one) counts from the run's start.
    const double from = std::max(r.t_wait, run.origin);
    const double wait = std::max(0.0, r.t_begin - from);
    if (r.t_begin < first_begin[r.stage]) {
      first_begin[r.stage] = r.t_begin;
      s.wait0 = wait;
    }
    s.wait += wait;
    s.copy1 += r.copy1;
    s.copy2 += r.copy2;
    s.run += r.run;
    s.ttime += std::max(0.0, r.t_end - from);
    s.copied_bytes += static_cast<double>(r.copy_in.bytes);
    ++s.requests;
  }
  return sums;
}

// Bytes a request hands across the cut after piece k: values produced at or before k and read after it.
int64_t crossing_bytes(const Plan& plan, int k) {
  std::map<std::string, int64_t> produced;
  for (const PieceDesc& piece : plan.pieces) {
    for (const ValueDesc& out : piece.outputs) produced[out.name] = out.bytes;
  }
  int64_t total = 0;
  for (const CrossingValue& v : plan.values) {
    if (v.producer < 0 || v.producer > k) continue;
    if (std::none_of(v.consumers.begin(), v.consumers.end(), [k](int c) { return c > k; })) continue;
    const auto it = produced.find(v.name);
    if (it == produced.end() || it->second < 0) return -1;
    total += it->second;
  }
  return total;
}

// Unmeasured runs, back to back for `seconds` (one at least): a core that was idle needs a while to reach its speed.
void warm_up(double seconds, const std::function<void()>& one_run) {
  const double end = steady_now_us() + seconds * 1e6;
  do {
    one_run();
  } while (steady_now_us() < end);
}

double bubble_theory(PipelineMode mode, int stages, int lanes, int requests) {
  switch (mode) {
    case PipelineMode::PIPELINE:
      return static_cast<double>(stages - 1) / static_cast<double>(requests + stages - 1);
    case PipelineMode::REPLICAS: {
      const int rounds = (requests + lanes - 1) / lanes;
      return 1.0 - static_cast<double>(requests) / static_cast<double>(lanes * rounds);
    }
    case PipelineMode::SEQUENCE:
      return 0;
  }
  return 0;
}

}  // namespace

ImageSweep parse_image_sweep(const std::string& spec) {
  ImageSweep sweep;
  const std::vector<std::string> items = split(spec, ',');
  bool lone_range = false;
  for (const std::string& item : items) {
    if (item.empty()) throw Error(ErrorCode::USAGE, "--images '" + spec + "': empty item");
    const std::vector<std::string> parts = split(item, ':');
    if (parts.size() > 3) {
      throw Error(ErrorCode::USAGE, "--images '" + spec + "': '" + item + "' has more than A:B:STEP");
    }
    if (parts.size() == 1) {
      sweep.counts.push_back(sweep_number(parts[0], spec));
      continue;
    }
    const int start = sweep_number(parts[0], spec);
    const int stop = sweep_number(parts[1], spec);
    const int step = parts.size() == 3 ? sweep_number(parts[2], spec) : 1;
    if (stop <= start) {
      throw Error(ErrorCode::USAGE, "--images '" + spec + "': '" + item + "' is empty (the stop " +
                                        std::to_string(stop) + " is excluded, like Python's range)");
    }
    for (int n = start; n < stop; n += step) sweep.counts.push_back(n);
    lone_range = items.size() == 1;
    if (lone_range) {
      sweep.max_n = stop;
      sweep.step = step;
    }
  }
  if (!lone_range) sweep.max_n = *std::max_element(sweep.counts.begin(), sweep.counts.end());
  return sweep;
}

std::vector<PipelineMode> parse_modes(const std::string& list) {
  std::vector<PipelineMode> modes;
  for (const std::string& item : split(list, ',')) {
    if (item.empty()) throw Error(ErrorCode::USAGE, "--modes '" + list + "': empty item");
    PipelineMode mode;
    try {
      mode = pipeline_mode_from_name(item);
    } catch (const Error& e) {
      throw e.with_context("--modes");
    }
    if (std::find(modes.begin(), modes.end(), mode) != modes.end()) {
      throw Error(ErrorCode::USAGE, "--modes '" + list + "': '" + item + "' is given twice");
    }
    modes.push_back(mode);
  }
  return modes;
}

struct Bench::Impl {
  BenchOptions options;
  Plan plan;
  std::string plan_dir;
  std::string temp_dir;  // a split made on the fly
  std::string plan_hash;
  std::string model;
  std::string ort;
  std::vector<int64_t> cut_bytes;

  ~Impl() {
    if (!temp_dir.empty()) {
      std::error_code ignored;
      fs::remove_all(temp_dir, ignored);
    }
  }

  std::vector<std::string> devices_of(PipelineMode mode) const {
    if (mode == PipelineMode::SEQUENCE) return {options.devices.front()};
    return options.devices;
  }

  Measurement measure(Pipeline& pipeline, TraceObserver& recorder, PipelineMode mode, int n,
                      const std::vector<TensorMap>& images, int64_t rows_per_image, double bound,
                      std::vector<TensorMap>& baseline, BenchSummary& summary,
                      const std::function<void()>& step_done) const;
  double time_alone(const std::string& source, const std::string& device, const TensorMap& inputs,
                    TensorMap* outputs) const;
  double measure_bound(PipelineMode mode, const std::vector<TensorMap>& images) const;
};

Bench::Bench(const std::string& source, BenchOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  BenchOptions& o = impl.options = std::move(options);
  if (o.devices.empty()) throw Error(ErrorCode::USAGE, "no device given");
  if (o.modes.empty()) throw Error(ErrorCode::USAGE, "no mode given");
  if (o.images.counts.empty()) throw Error(ErrorCode::USAGE, "no image count given");
  if (o.repeat < 1) throw Error(ErrorCode::USAGE, "--repeat must be >= 1");
  if (!(o.warmup >= 0)) throw Error(ErrorCode::USAGE, "--warmup must be >= 0 seconds");
  if (o.alone_runs < 1) throw Error(ErrorCode::USAGE, "the runs timing each session alone must be >= 1");
  if (o.micro_batch < 0) throw Error(ErrorCode::USAGE, "--micro-batch must be >= 0");
  if (o.max_inflight < 1) throw Error(ErrorCode::USAGE, "--max-inflight must be >= 1");
  for (const std::string& device : o.devices) parse_device(device);

  if (fs::is_directory(source)) {
    impl.plan = Plan::load(source);
    impl.plan_dir = source;
  } else if (fs::exists(source)) {
    const int parts = o.devices.size() == 1 ? o.split.parts : static_cast<int>(o.devices.size());
    if (o.devices.size() > 1 && o.split.parts != parts) {
      throw Error(ErrorCode::USAGE, std::to_string(o.devices.size()) + " devices for " + std::to_string(o.split.parts) +
                                        " parts: give one device per part (or one)");
    }
    SplitOptions split = o.split;
    split.parts = parts;
    if (split.dims.empty()) split.dims = o.dims;
    if (split.device == SplitOptions().device) {
      // Balance on the kind of device the stages run on, without pinning this thread.
      const DeviceSpec stage = parse_device(o.devices.front());
      if (stage.is_cuda()) {
        split.device = stage.to_string();
      } else {
        split.device = stage.threads > 0 ? "cpu:" + std::to_string(stage.threads) : "cpu";
      }
    }
    split.output_dir = impl.temp_dir = make_temp_dir_name();
    impl.plan = split_model(source, split);
    impl.plan_dir = impl.temp_dir;
  } else {
    throw Error(ErrorCode::IO, source + ": no such file or directory");
  }
  if (o.devices.size() == 1) o.devices.assign(impl.plan.parts(), o.devices.front());
  if (static_cast<int>(o.devices.size()) != impl.plan.parts()) {
    throw Error(ErrorCode::USAGE, std::to_string(o.devices.size()) + " devices for a plan of " +
                                      std::to_string(impl.plan.parts()) +
                                      " pieces: give one device per piece (or one)");
  }
  impl.plan_hash = sha256_file((fs::path(impl.plan_dir) / "plan.json").string()).substr(0, 16);
  impl.model = fs::path(impl.plan.source_path).stem().string();
  impl.ort = ort_version();
  for (int k = 0; k + 1 < impl.plan.parts(); ++k) impl.cut_bytes.push_back(crossing_bytes(impl.plan, k));
}

Bench::~Bench() = default;

const Plan& Bench::plan() const { return impl_->plan; }
const std::string& Bench::plan_dir() const { return impl_->plan_dir; }
std::string Bench::plan_hash() const { return impl_->plan_hash; }

std::vector<BenchColumn> Bench::columns() const {
  const int stages = impl_->plan.parts();
  std::vector<BenchColumn> c;
  auto add = [&c](std::string name, ColumnType type, bool key = false, bool fixed = false, int decimals = -1) {
    c.push_back({std::move(name), type, key, fixed, decimals});
  };
  using T = ColumnType;
  // The seed's columns, in its order.
  add("n_imgs", T::INT, true);
  add("maxN", T::INT, false, true);
  add("stepN", T::INT, false, true);
  add("repN", T::INT, false, true);
  add("batch_size", T::INT);
  add("n_threads", T::INT);
  add("name", T::TEXT, true);
  add("time", T::REAL, true);
  add("order", T::FLAG);
  for (const char* field : {"wait0", "wait", "copy1", "copy2", "run", "ttime", "wtime"}) {
    for (int i = 0; i < stages; ++i) add(std::string(field) + "_" + std::to_string(i), T::REAL);
  }
  // How close to the limit.
  add("throughput", T::REAL, true, false, 1);
  add("bound_throughput", T::REAL, true, false, 1);
  add("bound_share", T::REAL, true, false, 2);
  add("speedup", T::REAL, true, false, 2);
  add("latency_p50", T::REAL, true);
  add("latency_p90", T::REAL);
  add("latency_p99", T::REAL);
  for (int i = 0; i < stages; ++i) add("busy_" + std::to_string(i), T::REAL, true, false, 2);
  add("bubble", T::REAL, true, false, 3);
  add("bubble_theory", T::REAL, true, false, 3);
  add("requests", T::INT);
  for (int k = 0; k + 1 < stages; ++k) {
    const std::string cut = "cut" + std::to_string(k);
    add(cut + "_bytes", T::INT, false, true);
    add(cut + "_copied_bytes", T::REAL);
    add(cut + "_copy_s", T::REAL);
  }
  for (size_t d = 0; d < impl_->options.devices.size(); ++d) add("mem_peak_d" + std::to_string(d), T::INT);
  add("max_abs_diff", T::REAL, true);
  add("mismatches", T::INT);
  // The setup, on every row.
  add("mode_devices", T::TEXT);
  add("model", T::TEXT, false, true);
  add("parts", T::INT, false, true);
  add("devices", T::TEXT, false, true);
  add("balance", T::TEXT, false, true);
  add("micro_batch", T::INT, false, true);
  add("max_inflight", T::INT, false, true);
  add("warmup_s", T::REAL, false, true);
  add("plan_hash", T::TEXT, false, true);
  add("commit", T::TEXT, false, true);
  add("ort_version", T::TEXT, false, true);
  return c;
}

std::vector<BenchCell> Bench::row(const Measurement& m) const {
  const Impl& impl = *impl_;
  const BenchOptions& o = impl.options;
  const int stages = impl.plan.parts();
  std::vector<BenchCell> r;
  auto real = [](double v) { return std::isfinite(v) ? BenchCell(v) : BenchCell(); };
  auto count = [](int64_t v) { return v >= 0 ? BenchCell(v) : BenchCell(); };
  r.push_back(int64_t(m.images));
  r.push_back(int64_t(o.images.max_n));
  r.push_back(o.images.step > 0 ? BenchCell(int64_t(o.images.step)) : BenchCell());
  r.push_back(int64_t(o.repeat));
  r.push_back(int64_t(m.images));
  r.push_back(int64_t(m.sessions));
  r.push_back(std::string(pipeline_mode_name(m.mode)));
  r.push_back(m.time);
  r.push_back(m.order);
  const bool staged = static_cast<int>(m.stages.size()) == stages;
  for (double StageTimes::*field : {&StageTimes::wait0, &StageTimes::wait, &StageTimes::copy1, &StageTimes::copy2,
                                    &StageTimes::run, &StageTimes::ttime, &StageTimes::wtime}) {
    for (int i = 0; i < stages; ++i) r.push_back(staged ? BenchCell(m.stages[i].*field) : BenchCell());
  }
  r.push_back(m.throughput);
  r.push_back(real(m.bound_throughput));
  r.push_back(m.bound_throughput > 0 ? BenchCell(m.throughput / m.bound_throughput) : BenchCell());
  r.push_back(m.speedup >= 0 ? BenchCell(m.speedup) : BenchCell());
  r.push_back(real(m.latency_p50));
  r.push_back(real(m.latency_p90));
  r.push_back(real(m.latency_p99));
  for (int i = 0; i < stages; ++i) r.push_back(staged ? BenchCell(m.stages[i].busy) : BenchCell());
  r.push_back(m.bubble);
  r.push_back(m.bubble_theory);
  r.push_back(int64_t(m.requests));
  const bool cut = static_cast<int>(m.cuts.size()) == stages - 1;
  for (int k = 0; k + 1 < stages; ++k) {
    r.push_back(count(impl.cut_bytes[k]));
    r.push_back(cut ? BenchCell(m.cuts[k].copied_bytes) : BenchCell());
    r.push_back(cut ? BenchCell(m.cuts[k].copy_s) : BenchCell());
  }
  for (size_t d = 0; d < o.devices.size(); ++d) {
    r.push_back(d < m.peak_memory.size() ? count(m.peak_memory[d]) : BenchCell());
  }
  r.push_back(m.max_abs_diff);
  r.push_back(m.mismatches);
  r.push_back(m.mode_devices);
  r.push_back(impl.model);
  r.push_back(int64_t(stages));
  r.push_back(join(o.devices));
  r.push_back(impl.plan.balance);
  r.push_back(int64_t(o.micro_batch));
  r.push_back(int64_t(o.max_inflight));
  r.push_back(o.warmup);
  r.push_back(impl.plan_hash);
  r.push_back(o.commit);
  r.push_back(impl.ort);
  return r;
}

// One session by itself on its device, in its own pipeline: the median microseconds of a request there (copy in + run +
// copy out), the requests sent back to back so that the core stays as busy as in a run. `outputs` gets the answer.
double Bench::Impl::time_alone(const std::string& source, const std::string& device, const TensorMap& inputs,
                               TensorMap* outputs) const {
  PipelineOptions po;
  po.mode = PipelineMode::SEQUENCE;
  po.devices = {device};
  po.max_inflight = options.max_inflight;
  po.collect_timings = false;
  auto recorder = std::make_shared<TraceObserver>();
  po.observers = {recorder};
  Pipeline pipeline(source, po);
  *outputs = pipeline.submit(inputs).get();
  // Inputs are copied before the requests go, as in a measured run.
  auto back_to_back = [&] {
    std::vector<TensorMap> requests(options.alone_runs, inputs);
    std::vector<std::future<TensorMap>> futures;
    for (TensorMap& request : requests) futures.push_back(pipeline.submit(std::move(request)));
    for (auto& future : futures) future.get();
  };
  warm_up(options.warmup, back_to_back);
  recorder->start();
  back_to_back();
  recorder->stop();
  std::vector<double> us;
  for (const StageRecord& r : recorder->records()) us.push_back(r.copy1 + r.run + r.copy2);
  return median(us);
}

// The physical limit of a mode: every session timed alone (nothing else running), then one request per slowest stage
// (pipeline: each piece fed with what the pieces before it answered), or the sum of the replicas' rates. Images / s.
double Bench::Impl::measure_bound(PipelineMode mode, const std::vector<TensorMap>& images) const {
  const int per_request = options.micro_batch > 0 ? options.micro_batch : 1;
  const TensorMap request = options.micro_batch > 0 ? concat_batches(take_images(images, per_request)) : images.front();
  TensorMap answer;
  auto rate = [per_request](double us) { return us > 0 ? per_request / (us / 1e6) : 0.0; };
  if (mode == PipelineMode::SEQUENCE) return rate(time_alone(plan_dir, options.devices.front(), request, &answer));
  if (mode == PipelineMode::REPLICAS) {
    double bound = 0;
    for (const std::string& device : options.devices) bound += rate(time_alone(plan_dir, device, request, &answer));
    return bound;
  }
  TensorMap values = request;
  double slowest = 0;
  for (const PieceDesc& piece : plan.pieces) {
    TensorMap inputs;
    for (const ValueDesc& in : piece.inputs) {
      const auto it = values.find(in.name);
      if (it == values.end()) {
        throw Error(ErrorCode::INTERNAL, "piece " + piece.file + ": input '" + in.name + "' produced by no piece");
      }
      inputs.insert(*it);
    }
    const std::string path = (fs::path(plan_dir) / piece.file).string();
    slowest = std::max(slowest, time_alone(path, options.devices[piece.index], inputs, &answer));
    for (auto& [name, tensor] : answer) values[name] = std::move(tensor);
  }
  return rate(slowest);
}

Measurement Bench::Impl::measure(Pipeline& pipeline, TraceObserver& recorder, PipelineMode mode, int n,
                                 const std::vector<TensorMap>& images, int64_t rows_per_image, double bound,
                                 std::vector<TensorMap>& baseline, BenchSummary& summary,
                                 const std::function<void()>& step_done) const {
  const int stages = pipeline.stage_count();
  const int lanes = pipeline.lane_count();
  const int sessions = stages * lanes;
  Measurement m;
  m.mode = mode;
  m.mode_devices = join(devices_of(mode));
  m.images = n;
  m.sessions = sessions;
  m.bound_throughput = bound;
  std::vector<StageSums> sums(stages);
  std::vector<double> latencies;
  double bubble = 0;
  for (int rep = 0; rep < options.repeat; ++rep) {
    const RunOutcome run = run_once(pipeline, recorder, images, n, options.micro_batch, rows_per_image);
    m.time += run.seconds;
    m.requests = static_cast<int>(run.admitted.size());

    // Latency: admission to the end of the request's last stage, on one clock. A request may start before submit
    // returns: then its first stage's start is its admission. Request ids count over the pipeline's life.
    int64_t first_id = std::numeric_limits<int64_t>::max();
    for (const StageRecord& r : run.records) first_id = std::min(first_id, r.request);
    std::vector<double> admitted = run.admitted;
    std::vector<double> done(run.admitted.size(), 0);
    double work = 0;
    for (const StageRecord& r : run.records) {
      const int64_t index = r.request - first_id;
      if (index >= 0 && index < static_cast<int64_t>(done.size())) {
        done[index] = std::max(done[index], r.t_end + run.offset);
        admitted[index] = std::min(admitted[index], r.t_begin + run.offset);
      }
      work += r.copy1 + r.run + r.copy2;
    }
    for (size_t j = 0; j < done.size(); ++j) latencies.push_back((done[j] - admitted[j]) / 1e6);
    bubble += 1.0 - work / 1e6 / (sessions * run.seconds);

    // Order: did the last stage finish the requests as they were submitted?
    std::vector<std::pair<double, int64_t>> finished;
    for (const StageRecord& r : run.records) {
      if (r.stage == stages - 1) finished.emplace_back(r.t_end, r.request);
    }
    std::sort(finished.begin(), finished.end());
    for (size_t j = 1; j < finished.size(); ++j) m.order = m.order && finished[j - 1].second < finished[j].second;

    if (mode == PipelineMode::PIPELINE) {
      const std::vector<StageSums> one = stage_sums(run, stages);
      for (int k = 0; k < stages; ++k) {
        sums[k].wait0 += one[k].wait0;
        sums[k].wait += one[k].wait;
        sums[k].copy1 += one[k].copy1;
        sums[k].copy2 += one[k].copy2;
        sums[k].run += one[k].run;
        sums[k].ttime += one[k].ttime;
        sums[k].copied_bytes += one[k].copied_bytes;
        sums[k].requests += one[k].requests;
      }
    }

    // Every image against the first mode's answer for it.
    for (int i = 0; i < n; ++i) {
      const TensorMap& got = run.outputs[i];
      TensorMap& expected = baseline[i];
      if (expected.empty()) {
        expected = got;
        continue;
      }
      for (const auto& [name, tensor] : expected) {
        const auto it = got.find(name);
        Difference d;
        if (it == got.end()) {
          d.shape_mismatch = true;
          d.mismatches = tensor.element_count();
        } else {
          d = compare(it->second, tensor, options.rtol, options.atol);
        }
        m.max_abs_diff = std::max(m.max_abs_diff, d.max_abs);
        if (d.pass()) continue;
        m.mismatches += std::max<int64_t>(d.mismatches, 1);
        if (summary.mismatches.size() < kMismatchesListed) {
          summary.mismatches.push_back(
              std::string(pipeline_mode_name(mode)) + " N=" + std::to_string(n) + " image " + std::to_string(i) +
              " output '" + name +
              "': " + (it == got.end() ? std::string("missing") : "max |diff| " + std::to_string(d.max_abs)));
        }
      }
    }
    step_done();
  }
  const double reps = options.repeat;
  m.time /= reps;
  m.throughput = n / m.time;
  m.bubble = bubble / reps;
  m.bubble_theory = bubble_theory(mode, stages, lanes, m.requests);
  m.latency_p50 = percentile(latencies, 0.50);
  m.latency_p90 = percentile(latencies, 0.90);
  m.latency_p99 = percentile(latencies, 0.99);
  if (mode == PipelineMode::PIPELINE) {
    for (int k = 0; k < stages; ++k) {
      const StageSums& s = sums[k];
      StageTimes t;
      t.wait0 = s.wait0 / reps / 1e6;
      t.wait = s.wait / reps / 1e6;
      t.copy1 = s.copy1 / reps / 1e6;
      t.copy2 = s.copy2 / reps / 1e6;
      t.run = s.run / reps / 1e6;
      t.ttime = s.ttime / reps / 1e6;
      t.wtime = std::max(0.0, t.ttime - t.copy1 - t.run - t.copy2);
      t.busy = (t.copy1 + t.run + t.copy2) / m.time;
      m.stages.push_back(t);
      if (k > 0) {
        const double requests = std::max<int64_t>(1, s.requests);
        m.cuts.push_back({cut_bytes[k - 1], s.copied_bytes / requests, s.copy1 / requests / 1e6});
      }
    }
  }
  m.peak_memory.assign(options.devices.size(), -1);
  for (const StageInfo& info : pipeline.stages()) {
    const auto it = info.memory.find("MaxInUse");
    const size_t device = static_cast<size_t>(mode == PipelineMode::PIPELINE ? info.stage : info.lane);
    if (it == info.memory.end() || device >= m.peak_memory.size()) continue;
    m.peak_memory[device] = std::max<int64_t>(m.peak_memory[device], 0) + it->second;
  }
  summary.max_abs_diff = std::max(summary.max_abs_diff, m.max_abs_diff);
  return m;
}

BenchSummary Bench::run(const std::function<void(const Measurement&)>& on_row) {
  Impl& impl = *impl_;
  const BenchOptions& o = impl.options;
  const std::vector<int>& counts = o.images.counts;
  const int max_n = *std::max_element(counts.begin(), counts.end());

  // The seed's images: max_n random inputs, every N takes the first N.
  std::vector<TensorMap> images;
  for (int i = 0; i < max_n; ++i) {
    VerifyOptions random;
    random.dims = o.dims;
    random.seed = o.seed + static_cast<uint64_t>(i);
    images.push_back(make_inputs(impl.plan.model_inputs, random));
  }
  const int64_t rows_per_image = o.micro_batch > 0 ? batch_size(images.front()) : 1;

  const bool has_pipeline = std::find(o.modes.begin(), o.modes.end(), PipelineMode::PIPELINE) != o.modes.end();
  const PipelineMode trace_mode = has_pipeline ? PipelineMode::PIPELINE : o.modes.back();
  const int64_t total = static_cast<int64_t>(o.modes.size() * counts.size()) * o.repeat;
  int64_t done = 0;
  std::vector<TensorMap> baseline(max_n);
  std::map<int, double> sequence_time;
  BenchSummary summary;

  for (const PipelineMode mode : o.modes) {
    const std::string mode_name = pipeline_mode_name(mode);
    auto recorder = std::make_shared<TraceObserver>();
    PipelineOptions po;
    po.mode = mode;
    po.devices = impl.devices_of(mode);
    po.max_inflight = o.max_inflight;
    po.micro_batch = o.micro_batch;
    po.collect_timings = false;
    po.observers = {recorder};
    if (o.progress) o.progress("bench: loading " + mode_name, done, total);
    const double bound = impl.measure_bound(mode, images);
    Pipeline pipeline(impl.plan_dir, po);

    warm_up(o.warmup, [&] { run_once(pipeline, *recorder, images, max_n, o.micro_batch, rows_per_image); });

    for (const int n : counts) {
      const std::string what = "bench: " + mode_name + " N=" + std::to_string(n);
      auto step_done = [&] {
        ++done;
        if (o.progress) o.progress(what, done, total);
      };
      Measurement m =
          impl.measure(pipeline, *recorder, mode, n, images, rows_per_image, bound, baseline, summary, step_done);
      if (mode == PipelineMode::SEQUENCE) sequence_time[n] = m.time;
      const auto seq = sequence_time.find(n);
      if (seq != sequence_time.end()) m.speedup = seq->second / m.time;
      ++summary.rows;
      on_row(m);
      if (!o.trace_path.empty() && mode == trace_mode && n == max_n) {
        recorder->write(o.trace_path, pipeline.stages(),
                        impl.model + " " + mode_name + " N=" + std::to_string(n) + " on " + m.mode_devices);
      }
    }
  }
  return summary;
}

}  // namespace onnxpipe::detail
