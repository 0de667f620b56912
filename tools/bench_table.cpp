#include "bench_table.h"

#include <cmath>
#include <string>

namespace onnxpipe::cli {

namespace {

using detail::Measurement;
using detail::StageTimes;
using Getter = std::function<Cell(const Measurement&)>;

Cell real(double v) { return std::isfinite(v) ? Cell(v) : Cell(); }
Cell count(int64_t v) { return v >= 0 ? Cell(v) : Cell(); }

// The columns in order; `add` keeps the md width every bench column has ("sequence", "9.999e-06").
class Table {
 public:
  void add(std::string name, FieldType type, Getter get) {
    columns_.push_back({{std::move(name), type, -1, false, 9}, false, std::move(get)});
  }
  // A key column: shown in the md table, with `decimals` digits after the point (-1: 4 significant digits).
  void add_key(std::string name, FieldType type, int decimals, Getter get) {
    columns_.push_back({{std::move(name), type, decimals, true, 9}, false, std::move(get)});
  }
  void add_fixed(std::string name, FieldType type, Cell value) {
    columns_.push_back({{std::move(name), type, -1, false, 9}, true, [value](const Measurement&) { return value; }});
  }
  std::vector<BenchColumn> take() { return std::move(columns_); }

 private:
  std::vector<BenchColumn> columns_;
};

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

// The seed's columns, in its order.
void add_seed_columns(Table& t, const detail::Bench& bench) {
  const detail::BenchOptions& o = bench.options();
  const int stages = bench.plan().parts();
  t.add_key("n_imgs", FieldType::INT, -1, [](const Measurement& m) { return m.images; });
  t.add_fixed("maxN", FieldType::INT, o.images.max_n);
  t.add_fixed("stepN", FieldType::INT, count(o.images.step > 0 ? o.images.step : -1));  // a lone range's step
  t.add_fixed("repN", FieldType::INT, o.repeat);
  t.add("batch_size", FieldType::INT, [](const Measurement& m) { return m.images; });
  t.add("n_threads", FieldType::INT, [](const Measurement& m) { return m.sessions; });
  t.add_key("name", FieldType::STRING, -1, [](const Measurement& m) { return pipeline_mode_name(m.mode); });
  t.add_key("time", FieldType::FLOAT, -1, [](const Measurement& m) { return m.time; });
  t.add("order", FieldType::BOOL, [](const Measurement& m) { return m.order; });
  const std::pair<const char*, double StageTimes::*> fields[] = {
      {"wait0", &StageTimes::wait0}, {"wait", &StageTimes::wait}, {"copy1", &StageTimes::copy1},
      {"copy2", &StageTimes::copy2}, {"run", &StageTimes::run},   {"ttime", &StageTimes::ttime},
      {"wtime", &StageTimes::wtime}};
  for (const auto& [name, field] : fields) {
    for (int i = 0; i < stages; ++i) {
      // The seed leaves them empty where there are no stages (sequence, replicas).
      t.add(std::string(name) + "_" + std::to_string(i), FieldType::FLOAT, [i, field = field](const Measurement& m) {
        return static_cast<size_t>(i) < m.stages.size() ? Cell(m.stages[i].*field) : Cell();
      });
    }
  }
}

// How close to the limit, and whether the modes agree.
void add_figure_columns(Table& t, const detail::Bench& bench) {
  const int stages = bench.plan().parts();
  t.add_key("throughput", FieldType::FLOAT, 1, [](const Measurement& m) { return m.throughput; });
  t.add_key("bound_throughput", FieldType::FLOAT, 1, [](const Measurement& m) { return real(m.bound_throughput); });
  t.add_key("bound_share", FieldType::FLOAT, 2, [](const Measurement& m) {
    return m.bound_throughput > 0 ? Cell(m.throughput / m.bound_throughput) : Cell();
  });
  t.add_key("speedup", FieldType::FLOAT, 2,
            [](const Measurement& m) { return m.speedup >= 0 ? Cell(m.speedup) : Cell(); });
  t.add_key("latency_p50", FieldType::FLOAT, -1, [](const Measurement& m) { return real(m.latency_p50); });
  t.add("latency_p90", FieldType::FLOAT, [](const Measurement& m) { return real(m.latency_p90); });
  t.add("latency_p99", FieldType::FLOAT, [](const Measurement& m) { return real(m.latency_p99); });
  for (int i = 0; i < stages; ++i) {
    t.add_key("busy_" + std::to_string(i), FieldType::FLOAT, 2, [i](const Measurement& m) {
      return static_cast<size_t>(i) < m.stages.size() ? Cell(m.stages[i].busy) : Cell();
    });
  }
  t.add_key("bubble", FieldType::FLOAT, 3, [](const Measurement& m) { return m.bubble; });
  t.add_key("bubble_theory", FieldType::FLOAT, 3, [](const Measurement& m) { return m.bubble_theory; });
  t.add("requests", FieldType::INT, [](const Measurement& m) { return m.requests; });
  for (int k = 0; k + 1 < stages; ++k) {
    const std::string cut = "cut" + std::to_string(k);
    auto has = [k](const Measurement& m) { return static_cast<size_t>(k) < m.cuts.size(); };
    t.add_fixed(cut + "_bytes", FieldType::INT, count(bench.cut_bytes()[k]));
    t.add(cut + "_copied_bytes", FieldType::FLOAT,
          [k, has](const Measurement& m) { return has(m) ? Cell(m.cuts[k].copied_bytes) : Cell(); });
    t.add(cut + "_copy_s", FieldType::FLOAT,
          [k, has](const Measurement& m) { return has(m) ? Cell(m.cuts[k].copy_s) : Cell(); });
  }
  for (size_t d = 0; d < bench.options().devices.size(); ++d) {
    t.add("mem_peak_d" + std::to_string(d), FieldType::INT,
          [d](const Measurement& m) { return d < m.peak_memory.size() ? count(m.peak_memory[d]) : Cell(); });
  }
  t.add_key("max_abs_diff", FieldType::FLOAT, -1, [](const Measurement& m) { return m.max_abs_diff; });
  t.add("mismatches", FieldType::INT, [](const Measurement& m) { return m.mismatches; });
}

// The setup, on every row.
void add_setup_columns(Table& t, const detail::Bench& bench) {
  const detail::BenchOptions& o = bench.options();
  t.add("mode_devices", FieldType::STRING, [](const Measurement& m) { return m.mode_devices; });
  t.add_fixed("model", FieldType::STRING, bench.model());
  t.add_fixed("parts", FieldType::INT, bench.plan().parts());
  t.add_fixed("devices", FieldType::STRING, join(o.devices));
  t.add_fixed("balance", FieldType::STRING, bench.plan().balance);
  t.add_fixed("micro_batch", FieldType::INT, o.micro_batch);
  t.add_fixed("max_inflight", FieldType::INT, o.max_inflight);
  t.add_fixed("warmup_s", FieldType::FLOAT, o.warmup);
  t.add_fixed("plan_hash", FieldType::STRING, bench.plan_hash());
  t.add_fixed("commit", FieldType::STRING, o.commit);
  t.add_fixed("ort_version", FieldType::STRING, bench.ort_version());
}

// Stages on several ranks: where each ran, and per stage its hop (empty for stages on rank 0 and the other modes).
void add_rank_columns(Table& t, const detail::Bench& bench) {
  if (bench.options().ranks.empty()) return;
  t.add_key("ranks", FieldType::STRING, -1,
            [](const Measurement& m) { return m.ranks.empty() ? Cell() : Cell(m.ranks); });
  t.add_key("hosts", FieldType::STRING, -1,
            [](const Measurement& m) { return m.hosts.empty() ? Cell() : Cell(m.hosts); });
  using HopGetter = std::function<Cell(const StageTimes&, const Measurement&)>;
  const auto hop = [](int i, HopGetter get) {
    return [i, get](const Measurement& m) {
      const bool remote = static_cast<size_t>(i) < m.stages.size() && m.stages[i].hop_bytes > 0;
      return remote ? get(m.stages[i], m) : Cell();
    };
  };
  for (int i = 0; i < bench.plan().parts(); ++i) {
    const std::string k = std::to_string(i);
    t.add("hop_bytes_" + k, FieldType::FLOAT,
          hop(i, [](const StageTimes& s, const Measurement&) { return Cell(s.hop_bytes); }));
    t.add("hop_ms_" + k, FieldType::FLOAT, hop(i, [](const StageTimes& s, const Measurement& m) {
            return Cell(s.hop_s * 1e3 / std::max(1, m.requests));  // per request
          }));
    t.add_key("hop_share_" + k, FieldType::FLOAT, 3, hop(i, [](const StageTimes& s, const Measurement&) {
                return Cell(s.hop_s / (s.hop_s + s.run));  // of the hop and the run there together
              }));
  }
}

}  // namespace

std::vector<BenchColumn> bench_columns(const detail::Bench& bench) {
  Table table;
  add_seed_columns(table, bench);
  add_figure_columns(table, bench);
  add_setup_columns(table, bench);
  add_rank_columns(table, bench);
  return table.take();
}

std::vector<Field> fields_of(const std::vector<BenchColumn>& columns) {
  std::vector<Field> fields;
  for (const BenchColumn& c : columns) fields.push_back(c.field);
  return fields;
}

Row row_of(const std::vector<BenchColumn>& columns, const detail::Measurement& m) {
  Row row;
  for (const BenchColumn& c : columns) row.push_back(c.get(m));
  return row;
}

}  // namespace onnxpipe::cli
