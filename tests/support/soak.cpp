#include "support/soak.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/split.h"
#include "support/model_builder.h"

namespace onnxpipe::test {
namespace {

using Clock = std::chrono::steady_clock;

enum class Fault { STAGE_THROWS, WRONG_SHAPE, ABANDONED, DESTROYED };
constexpr int kFaultKinds = 4;

// x [batch, 4], idx [1] -> Relu | Neg | Gather(axis 1) + Add -> y: three pieces, an index out of range fails the last.
std::string write_pieces(const std::string& dir) {
  ModelBuilder b;
  b.input("x", DType::FLOAT, {"batch", 4});
  b.input("idx", DType::INT64, {1});
  b.node("Relu", {"x"}, {"a"});
  b.node("Neg", {"a"}, {"n"});
  b.node("Gather", {"n", "idx"}, {"g"}).add_attribute()->CopyFrom(attr_i("axis", 1));
  b.node("Add", {"n", "g"}, {"y"});
  b.output("y", DType::FLOAT, {"batch", 4});
  const std::string model = b.save(dir + "/soak.onnx");
  SplitOptions split;
  split.parts = 3;
  split.cuts = {"a", "n"};
  split.balance = Balance::FLOPS;
  split.output_dir = dir + "/pieces";
  split.force = true;
  split_model(model, split);
  return split.output_dir;
}

struct Request {
  TensorMap inputs;
  std::vector<float> expected;  // y
};

Request make_request(int64_t i, int64_t index) {
  std::mt19937 rng(static_cast<uint32_t>(i));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Request r;
  Tensor x = make_tensor(DType::FLOAT, {2, 4});
  for (int k = 0; k < 8; ++k) x.as<float>()[k] = dist(rng);
  Tensor idx = make_tensor(DType::INT64, {1});
  idx.as<int64_t>()[0] = index;
  for (int row = 0; row < 2; ++row)
    for (int col = 0; col < 4; ++col) {
      const float* in = x.as<float>() + row * 4;
      auto n = [](float v) { return -(v > 0 ? v : 0.0f); };
      r.expected.push_back(n(in[col]) + n(in[index & 3]));
    }
  r.inputs = {{"x", std::move(x)}, {"idx", std::move(idx)}};
  return r;
}

// Counts the records delivered, and what the watchdog watches.
class Answers : public StageObserver {
 public:
  void on_request_done(const RequestRecord&) override { ++count; }
  std::atomic<int64_t> count{0};
};

struct Pending {
  int64_t index;
  bool faulty;  // STAGE_THROWS: an error is expected
  std::vector<float> expected;
  std::future<TensorMap> future;
};

}  // namespace

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

SoakReport run_soak(const SoakOptions& o) {
  SoakReport report;
  const std::string pieces = write_pieces(o.dir);
  auto answers = std::make_shared<Answers>();
  PipelineOptions options;
  options.devices = {"cpu:1", "cpu:1", "cpu:1"};
  options.max_inflight = o.max_inflight;
  options.collect_timings = false;  // a record per request would grow with the run
  options.observers = {answers};
  auto pipeline = std::make_unique<Pipeline>(pieces, options);

  // The watchdog: no answer for stall_seconds is a hang; the process cannot be trusted to unwind, so it aborts.
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mutex);
    int64_t last = -1;
    auto last_change = Clock::now();
    while (!finished.wait_for(lock, std::chrono::milliseconds(200), [&] { return done; })) {
      const int64_t now = answers->count.load();
      if (now != last) {
        last = now;
        last_change = Clock::now();
      } else if (Clock::now() - last_change > std::chrono::duration<double>(o.stall_seconds)) {
        std::fprintf(stderr, "soak watchdog: no request answered for %.0f s (%lld answered): hung\n", o.stall_seconds,
                     static_cast<long long>(now));
        std::abort();
      }
    }
  });

  std::deque<Pending> pending;
  auto problem = [&report](const std::string& text) {
    if (report.problems.size() < 20) report.problems.push_back(text);
  };
  auto settle = [&](Pending& p) {
    try {
      const TensorMap out = p.future.get();
      const auto it = out.find("y");
      if (p.faulty) {
        problem("request " + std::to_string(p.index) + ": an index out of range was answered with outputs");
      } else if (it == out.end() || it->second.element_count() != 8 ||
                 std::vector<float>(it->second.as<float>(), it->second.as<float>() + 8) != p.expected) {
        problem("request " + std::to_string(p.index) + ": wrong outputs (another request's, or none)");
      } else {
        ++report.results;
      }
    } catch (const Error& e) {
      if (p.faulty && e.code() == ErrorCode::RUNTIME && e.stage() && e.stage()->index == 2) {
        ++report.reported;
        ++report.failed;
      } else if (e.code() == ErrorCode::CANCELLED) {
        problem("request " + std::to_string(p.index) + ": cancelled outside a shutdown");
      } else {
        problem("request " + std::to_string(p.index) + ": unexpected error: " + e.what());
      }
    } catch (const std::exception& e) {
      problem("request " + std::to_string(p.index) + ": not an onnxpipe::Error: " + e.what());
    }
  };
  auto drain = [&](size_t keep) {
    while (pending.size() > keep) {
      settle(pending.front());
      pending.pop_front();
    }
  };

  const auto start = Clock::now();
  int64_t faults = 0;
  for (int64_t i = 0; i < o.requests; ++i) {
    if (i == o.fault_every) report.rss_warm_bytes = resident_bytes();
    const bool inject = i % o.fault_every == o.fault_every / 2;
    const Fault fault = static_cast<Fault>(faults % kFaultKinds);
    if (!inject) {
      Request r = make_request(i, i % 4);
      pending.push_back({i, false, std::move(r.expected), pipeline->submit(std::move(r.inputs)).result});
      ++report.submitted;
      drain(static_cast<size_t>(2 * o.max_inflight));
      continue;
    }
    ++faults;
    ++report.injected;
    switch (fault) {
      case Fault::STAGE_THROWS: {
        Request r = make_request(i, 100);
        pending.push_back({i, true, {}, pipeline->submit(std::move(r.inputs)).result});
        ++report.submitted;
        break;
      }
      case Fault::WRONG_SHAPE: {
        Request r = make_request(i, 0);
        r.inputs["x"] = make_tensor(DType::FLOAT, {2, 5});
        try {
          pipeline->submit(std::move(r.inputs));
          problem("request " + std::to_string(i) + ": an input of the wrong shape was admitted");
        } catch (const Error& e) {
          if (e.code() == ErrorCode::USAGE)
            ++report.reported;
          else
            problem("request " + std::to_string(i) + ": wrong shape refused with " + error_code_name(e.code()));
        }
        break;
      }
      case Fault::ABANDONED: {
        const int64_t before = answers->count.load();
        Request r = make_request(i, 1);
        {
          Ticket dropped = pipeline->submit(std::move(r.inputs));  // its future goes out of scope unread
        }
        ++report.submitted;
        ++report.abandoned;
        drain(0);  // everything before it answered; it is answered in order too
        const auto bound = Clock::now() + std::chrono::duration<double>(o.stall_seconds);
        while (answers->count.load() < before + 1 && Clock::now() < bound)
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        if (answers->count.load() >= before + 1) ++report.reported;
        break;
      }
      case Fault::DESTROYED: {
        std::vector<Pending> in_flight;
        for (int k = 0; k < o.max_inflight; ++k) {
          Request r = make_request(i, k % 4);
          in_flight.push_back({i, false, std::move(r.expected), pipeline->submit(std::move(r.inputs)).result});
          ++report.submitted;
        }
        drain(0);
        pipeline.reset();  // with up to max_inflight requests still in flight
        for (Pending& p : in_flight) {
          try {
            const TensorMap out = p.future.get();
            const auto it = out.find("y");
            if (it == out.end() || std::vector<float>(it->second.as<float>(), it->second.as<float>() + 8) != p.expected)
              problem("request " + std::to_string(i) + ": wrong outputs while the pipeline shut down");
            else
              ++report.results;
          } catch (const Error& e) {
            if (e.code() == ErrorCode::CANCELLED)
              ++report.cancelled;
            else
              problem("request " + std::to_string(i) + ": shutdown answered " + e.what());
          }
        }
        ++report.reported;
        pipeline = std::make_unique<Pipeline>(pieces, options);
        ++report.restarts;
        break;
      }
    }
  }
  drain(0);
  pipeline.reset();
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report.requests_per_second = static_cast<double>(report.submitted) / report.seconds;
  report.rss_end_bytes = resident_bytes();
  report.answered = answers->count.load();
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  finished.notify_all();
  watchdog.join();
  if (report.results + report.failed + report.abandoned + report.cancelled != report.submitted)
    problem(std::to_string(report.submitted) + " requests admitted: " + std::to_string(report.results) + " results, " +
            std::to_string(report.failed) + " failed, " + std::to_string(report.abandoned) + " abandoned, " +
            std::to_string(report.cancelled) + " cancelled");
  if (report.answered != report.submitted)
    problem(std::to_string(report.submitted) + " requests admitted, " + std::to_string(report.answered) + " answered");
  return report;
}

}  // namespace onnxpipe::test
