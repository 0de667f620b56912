#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <limits>
#include <map>
#include <optional>

#include "batching.h"
#include "device_split.h"
#include "model_io.h"
#include "onnxpipe/error.h"
#include "onnxpipe/verify.h"
#include "runtime.h"
#include "staging.h"
#include "stats.h"

namespace onnxpipe::detail {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMismatchesListed = 5;

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

// What one measured run gave.
struct RunOutcome {
  double seconds = 0;
  std::vector<TensorMap> outputs;       // per image
  std::vector<RequestRecord> requests;  // the run's requests (the micro-batches with micro_batch), by id
  double origin = 0;                    // the run's start, on the records' clock
};

// The first n images (cycling when there are fewer), as requests of one image or as one batch.
std::vector<TensorMap> take_images(const std::vector<TensorMap>& images, int n) {
  std::vector<TensorMap> taken;
  taken.reserve(n);
  for (int i = 0; i < n; ++i) taken.push_back(images[i % images.size()]);
  return taken;
}

// Runs n images through the pipeline once: all submitted at once (back-pressure at max_inflight), or as one batch cut
// into micro-batches. Inputs are copied before the clock starts; the pipeline's records are those of this run.
RunOutcome run_once(Pipeline& pipeline, const std::vector<TensorMap>& images, int n, int micro_batch,
                    int64_t rows_per_image) {
  RunOutcome outcome;
  std::vector<TensorMap> requests = take_images(images, n);
  const TensorMap batch = micro_batch > 0 ? concat_batches(requests) : TensorMap{};
  pipeline.timings().clear();
  outcome.origin = pipeline.now_us();
  if (micro_batch == 0) {
    std::vector<Ticket> tickets;
    tickets.reserve(n);
    for (TensorMap& request : requests) tickets.push_back(pipeline.submit(std::move(request)));
    for (Ticket& ticket : tickets) outcome.outputs.push_back(ticket.get());
  } else {
    outcome.outputs = split_batch(pipeline.run_batch(batch, micro_batch), rows_per_image);
  }
  outcome.seconds = (pipeline.now_us() - outcome.origin) / 1e6;
  outcome.requests = pipeline.timings().requests();
  return outcome;
}

// The seed's per-stage counters of one run (microseconds), and the stages' work.
struct StageSums {
  double wait0 = 0, wait = 0, copy1 = 0, copy2 = 0, run = 0, ttime = 0;
  double copied_bytes = 0;
  double hop_bytes = 0, hop_us = 0;
  int64_t requests = 0;
};

// Adds one run's counters to `sums` (one per stage).
void add_stage_sums(const RunOutcome& run, std::vector<StageSums>& sums) {
  const int stages = static_cast<int>(sums.size());
  std::vector<double> first_begin(stages, std::numeric_limits<double>::infinity());
  std::vector<double> wait0(stages, 0);
  for (const RequestRecord& request : run.requests) {
    for (const StageRecord& r : request.stages) {
      if (r.stage < 0 || r.stage >= stages) continue;
      StageSums& s = sums[r.stage];
      // A wait that began before the run (the stage idle since the last one) counts from the run's start.
      const double from = std::max(r.t_wait, run.origin);
      const double wait = std::max(0.0, r.t_begin - from);
      if (r.t_begin < first_begin[r.stage]) {
        first_begin[r.stage] = r.t_begin;
        wait0[r.stage] = wait;
      }
      s.wait += wait;
      s.copy1 += r.copy1;
      s.copy2 += r.copy2;
      s.run += r.run;
      s.ttime += std::max(0.0, r.t_end - from);
      s.copied_bytes += static_cast<double>(r.copy_in.bytes);
      s.hop_bytes += static_cast<double>(r.hop_bytes);
      s.hop_us += r.hop_us;
      ++s.requests;
    }
  }
  for (int k = 0; k < stages; ++k) sums[k].wait0 += wait0[k];
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
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    one_run();
  } while (std::chrono::steady_clock::now() < end);
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

ImageSweep ImageSweep::range(int start, int stop, int step) {
  ImageSweep sweep;
  for (int n = start; n < stop; n += std::max(step, 1)) sweep.counts.push_back(n);
  sweep.max_n = stop;
  sweep.step = step;
  return sweep;
}

ImageSweep ImageSweep::list(std::vector<int> counts) {
  ImageSweep sweep;
  sweep.counts = std::move(counts);
  if (!sweep.counts.empty()) sweep.max_n = *std::max_element(sweep.counts.begin(), sweep.counts.end());
  return sweep;
}

namespace {

// Every figure of one (mode, N), summed over its repetitions.
struct Tally {
  double seconds = 0;
  int requests = 0;  // per run
  std::vector<double> latencies;
  double bubble = 0;
  bool order = true;
  std::vector<StageSums> stages;  // pipeline mode only
};

// Where a sweep stands across the modes.
struct Sweep {
  std::vector<TensorMap> images;    // the seed's images: max_n random inputs, every N takes the first N
  std::vector<TensorMap> baseline;  // the first mode's answer per image
  std::map<int, double> sequence_time;
  int64_t done = 0, total = 0;  // repetitions, for progress
  BenchSummary summary;
};

}  // namespace

struct Bench::Impl {
  BenchOptions options;
  Plan plan;
  std::string plan_dir;
  std::optional<DeviceSplit> split;  // a split made on the fly
  std::string plan_hash;
  std::string model;
  std::string ort;
  std::vector<int64_t> cut_bytes;

  std::vector<std::string> devices_of(PipelineMode mode) const {
    if (mode == PipelineMode::SEQUENCE) return {options.devices.front()};
    return options.devices;
  }

  // The same on every rank: a pipeline on ranks is built by each from the same options.
  PipelineOptions pipeline_options(PipelineMode mode) const {
    PipelineOptions po;
    po.mode = mode;
    po.devices = devices_of(mode);
    po.max_inflight = options.max_inflight;
    po.micro_batch = options.micro_batch;
    if (mode == PipelineMode::PIPELINE) po.ranks = options.ranks;
    return po;
  }

  // The repetitions of one (mode, N): run, then aggregate, each run's outputs compared as it comes.
  Measurement measure(Pipeline& pipeline, PipelineMode mode, int n, const std::vector<TensorMap>& images,
                      std::vector<TensorMap>& baseline, BenchSummary& summary,
                      const std::function<void()>& step_done) const;
  void tally(const RunOutcome& run, PipelineMode mode, int sessions, Tally& into) const;
  Measurement aggregate(const Tally& tally, const Pipeline& pipeline, PipelineMode mode, int n) const;
  void compare(const RunOutcome& run, PipelineMode mode, int n, std::vector<TensorMap>& baseline, Measurement& m,
               BenchSummary& summary) const;
  double time_alone(const std::string& source, const std::string& device, const TensorMap& inputs,
                    TensorMap* outputs) const;
  double measure_bound(PipelineMode mode, const std::vector<TensorMap>& images) const;
  // One mode's sweep: its bound, a warm-up, then every N; on_row gets each N's row.
  void run_mode(PipelineMode mode, Sweep& sweep, const std::function<void(const Measurement&)>& on_row) const;
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

  if (!o.ranks.empty() && !fs::is_directory(source)) {
    throw Error(ErrorCode::USAGE, source + ": stages on ranks need a plan directory (every rank loads its pieces)");
  }
  if (fs::is_directory(source)) {
    impl.plan = Plan::load(source);
    impl.plan_dir = source;
  } else if (fs::exists(source)) {
    SplitOptions split = o.split;
    if (split.dims.empty()) split.dims = o.dims;
    impl.split.emplace(source, split, o.devices);
    impl.plan = impl.split->plan();
    impl.plan_dir = impl.split->dir();
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

const BenchOptions& Bench::options() const { return impl_->options; }
const std::string& Bench::model() const { return impl_->model; }
const std::string& Bench::ort_version() const { return impl_->ort; }
const std::vector<int64_t>& Bench::cut_bytes() const { return impl_->cut_bytes; }

// One session by itself on its device, in its own pipeline: the median microseconds of a request there (copy in + run +
// copy out), the requests sent back to back so that the core stays as busy as in a run. `outputs` gets the answer.
double Bench::Impl::time_alone(const std::string& source, const std::string& device, const TensorMap& inputs,
                               TensorMap* outputs) const {
  PipelineOptions po;
  po.mode = PipelineMode::SEQUENCE;
  po.devices = {device};
  po.max_inflight = options.max_inflight;
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
  pipeline.timings().clear();
  back_to_back();
  std::vector<double> us;
  for (const StageRecord& r : pipeline.timings().records()) us.push_back(r.copy1 + r.run + r.copy2);
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

Measurement Bench::Impl::measure(Pipeline& pipeline, PipelineMode mode, int n, const std::vector<TensorMap>& images,
                                 std::vector<TensorMap>& baseline, BenchSummary& summary,
                                 const std::function<void()>& step_done) const {
  const int64_t rows_per_image = options.micro_batch > 0 ? batch_size(images.front()) : 1;
  const int sessions = pipeline.stage_count() * pipeline.lane_count();
  Tally t;
  t.stages.resize(mode == PipelineMode::PIPELINE ? pipeline.stage_count() : 0);
  Measurement compared;
  for (int rep = 0; rep < options.repeat; ++rep) {
    const RunOutcome run = run_once(pipeline, images, n, options.micro_batch, rows_per_image);
    tally(run, mode, sessions, t);
    compare(run, mode, n, baseline, compared, summary);
    step_done();
  }
  Measurement m = aggregate(t, pipeline, mode, n);
  m.max_abs_diff = compared.max_abs_diff;
  m.mismatches = compared.mismatches;
  summary.max_abs_diff = std::max(summary.max_abs_diff, m.max_abs_diff);
  return m;
}

// Adds one run: its time, every request's latency, the idle share of the sessions, whether the last stage finished
// the requests in submission order, and (pipeline) the seed's per-stage counters.
void Bench::Impl::tally(const RunOutcome& run, PipelineMode mode, int sessions, Tally& into) const {
  into.seconds += run.seconds;
  into.requests = static_cast<int>(run.requests.size());
  double work = 0;
  std::vector<std::pair<double, int64_t>> finished;  // (last stage's end, id)
  for (const RequestRecord& request : run.requests) {
    into.latencies.push_back(request.latency_us() / 1e6);
    for (const StageRecord& r : request.stages) work += r.copy1 + r.run + r.copy2;
    if (!request.stages.empty()) finished.emplace_back(request.stages.back().t_end, request.id);
  }
  into.bubble += 1.0 - work / 1e6 / (sessions * run.seconds);
  std::sort(finished.begin(), finished.end());
  for (size_t j = 1; j < finished.size(); ++j) into.order = into.order && finished[j - 1].second < finished[j].second;
  if (mode == PipelineMode::PIPELINE) add_stage_sums(run, into.stages);
}

// The repetitions' means; the peak memory of the mode's sessions per device entry.
Measurement Bench::Impl::aggregate(const Tally& t, const Pipeline& pipeline, PipelineMode mode, int n) const {
  const int stages = pipeline.stage_count();
  const double reps = options.repeat;
  Measurement m;
  m.mode = mode;
  m.mode_devices = join(devices_of(mode));
  m.images = n;
  m.requests = t.requests;
  m.sessions = stages * pipeline.lane_count();
  m.order = t.order;
  m.time = t.seconds / reps;
  m.throughput = n / m.time;
  m.bubble = t.bubble / reps;
  m.bubble_theory = bubble_theory(mode, stages, pipeline.lane_count(), m.requests);
  m.latency_p50 = percentile(t.latencies, 0.50);
  m.latency_p90 = percentile(t.latencies, 0.90);
  m.latency_p99 = percentile(t.latencies, 0.99);
  for (size_t k = 0; k < t.stages.size(); ++k) {
    const StageSums& s = t.stages[k];
    StageTimes st;
    st.wait0 = s.wait0 / reps / 1e6;
    st.wait = s.wait / reps / 1e6;
    st.copy1 = s.copy1 / reps / 1e6;
    st.copy2 = s.copy2 / reps / 1e6;
    st.run = s.run / reps / 1e6;
    st.ttime = s.ttime / reps / 1e6;
    st.wtime = std::max(0.0, st.ttime - st.copy1 - st.run - st.copy2);
    st.busy = (st.copy1 + st.run + st.copy2) / m.time;
    st.hop_bytes = s.hop_bytes / std::max<int64_t>(1, s.requests);
    st.hop_s = s.hop_us / reps / 1e6;
    m.stages.push_back(st);
    if (k > 0) {
      const double requests = std::max<int64_t>(1, s.requests);
      m.cuts.push_back({cut_bytes[k - 1], s.copied_bytes / requests, s.copy1 / requests / 1e6});
    }
  }
  const std::vector<StageInfo> infos = pipeline.stages();
  if (!options.ranks.empty()) {
    std::vector<std::string> ranks, hosts;
    for (const StageInfo& info : infos) {
      ranks.push_back(std::to_string(info.rank));
      hosts.push_back(info.host);
    }
    m.ranks = join(ranks);
    m.hosts = join(hosts);
  }
  // Each session under the entry of options.devices it was placed on (the entries of devices_of(mode), in order).
  m.peak_memory.assign(options.devices.size(), -1);
  for (const StageInfo& info : infos) {
    const auto it = info.memory.find("MaxInUse");
    const size_t entry = static_cast<size_t>(mode == PipelineMode::PIPELINE ? info.stage : info.lane);
    if (it == info.memory.end() || entry >= m.peak_memory.size()) continue;
    m.peak_memory[entry] = std::max<int64_t>(m.peak_memory[entry], 0) + it->second;
  }
  return m;
}

// Every image of a run against the first mode's answer for it (the first mode's own answers become the baseline).
void Bench::Impl::compare(const RunOutcome& run, PipelineMode mode, int n, std::vector<TensorMap>& baseline,
                          Measurement& m, BenchSummary& summary) const {
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
        d = onnxpipe::compare(it->second, tensor, options.rtol, options.atol);
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
}

void Bench::Impl::run_mode(PipelineMode mode, Sweep& sweep,
                           const std::function<void(const Measurement&)>& on_row) const {
  const Impl& impl = *this;
  const BenchOptions& o = options;
  const std::string mode_name = pipeline_mode_name(mode);
  const int max_n = static_cast<int>(sweep.images.size());
  const PipelineOptions po = impl.pipeline_options(mode);
  if (o.progress) o.progress("bench: loading " + mode_name, sweep.done, sweep.total);
  const double bound = impl.measure_bound(mode, sweep.images);
  Pipeline pipeline(impl.plan_dir, po);
  const int64_t rows_per_image = o.micro_batch > 0 ? batch_size(sweep.images.front()) : 1;
  warm_up(o.warmup, [&] { run_once(pipeline, sweep.images, max_n, o.micro_batch, rows_per_image); });

  const bool has_pipeline = std::find(o.modes.begin(), o.modes.end(), PipelineMode::PIPELINE) != o.modes.end();
  const PipelineMode trace_mode = has_pipeline ? PipelineMode::PIPELINE : o.modes.back();
  for (const int n : o.images.counts) {
    const std::string what = "bench: " + mode_name + " N=" + std::to_string(n);
    auto step_done = [&] {
      ++sweep.done;
      if (o.progress) o.progress(what, sweep.done, sweep.total);
    };
    Measurement m = impl.measure(pipeline, mode, n, sweep.images, sweep.baseline, sweep.summary, step_done);
    m.bound_throughput = bound;
    if (mode == PipelineMode::SEQUENCE) sweep.sequence_time[n] = m.time;
    const auto seq = sweep.sequence_time.find(n);
    if (seq != sweep.sequence_time.end()) m.speedup = seq->second / m.time;
    ++sweep.summary.rows;
    on_row(m);
    if (!o.trace_path.empty() && mode == trace_mode && n == max_n) {
      // The pipeline's records are those of the last repetition.
      const std::string title = impl.model + " " + mode_name + " N=" + std::to_string(n) + " on " + m.mode_devices;
      write_file_atomically(o.trace_path, chrome_trace(pipeline.timings().requests(), pipeline.stages(), title) + "\n");
    }
  }
}

BenchSummary Bench::run(const std::function<void(const Measurement&)>& on_row) {
  const BenchOptions& o = impl_->options;
  const int max_n = *std::max_element(o.images.counts.begin(), o.images.counts.end());
  Sweep sweep;
  for (int i = 0; i < max_n; ++i) {
    VerifyOptions random;
    random.inputs = o.inputs;
    random.dims = o.dims;
    random.seed = o.seed + static_cast<uint64_t>(i);
    sweep.images.push_back(make_inputs(impl_->plan.model_inputs, random));
  }
  sweep.baseline.resize(max_n);
  sweep.total = static_cast<int64_t>(o.modes.size() * o.images.counts.size()) * o.repeat;
  for (const PipelineMode mode : o.modes) impl_->run_mode(mode, sweep, on_row);
  return sweep.summary;
}

void Bench::serve() {
  const BenchOptions& o = impl_->options;
  if (o.ranks.empty() || std::find(o.modes.begin(), o.modes.end(), PipelineMode::PIPELINE) == o.modes.end()) return;
  Pipeline(impl_->plan_dir, impl_->pipeline_options(PipelineMode::PIPELINE)).serve();
}

}  // namespace onnxpipe::detail
