// onnxpipe.bench: the CLI's bench (src/bench.h) with its rows as the CLI's CSV columns (tools/bench_table.h).
#include "bench.h"

#include <pybind11/stl.h>

#include "bench_table.h"
#include "convert.h"
#include "interrupt.h"
#include "onnxpipe/error.h"
#include "sweep.h"

namespace onnxpipe::python {

namespace {

py::object cell_object(const cli::Cell& cell) {
  return std::visit(
      [](const auto& value) -> py::object {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return py::none();
        } else {
          return py::cast(value);
        }
      },
      cell.value());
}

detail::ImageSweep image_sweep(const py::handle& images) {
  if (py::isinstance<py::str>(images)) return cli::parse_image_sweep(images.cast<std::string>());
  if (py::isinstance(images, py::module_::import("builtins").attr("range"))) {
    return detail::ImageSweep::range(images.attr("start").cast<int>(), images.attr("stop").cast<int>(),
                                     images.attr("step").cast<int>());
  }
  if (py::isinstance<py::int_>(images)) return detail::ImageSweep::list({images.cast<int>()});
  return detail::ImageSweep::list(images.cast<std::vector<int>>());
}

detail::BenchOptions bench_options(const py::dict& options) {
  detail::BenchOptions o;
  if (auto v = option(options, "devices")) o.devices = v.cast<std::vector<std::string>>();
  if (auto v = option(options, "modes")) {
    o.modes = py::isinstance<py::str>(v) ? cli::parse_modes(v.cast<std::string>())
                                         : cli::parse_modes(py::str(",").attr("join")(v).cast<std::string>());
  }
  if (auto v = option(options, "images")) o.images = image_sweep(v);
  if (auto v = option(options, "repeat")) o.repeat = v.cast<int>();
  if (auto v = option(options, "warmup")) o.warmup = v.cast<double>();
  if (auto v = option(options, "alone_runs")) o.alone_runs = v.cast<int>();
  if (auto v = option(options, "micro_batch")) o.micro_batch = v.cast<int>();
  if (auto v = option(options, "max_inflight")) o.max_inflight = v.cast<int>();
  if (auto v = option(options, "atol")) o.atol = v.cast<double>();
  if (auto v = option(options, "seed")) o.seed = v.cast<uint64_t>();
  if (auto v = option(options, "dims")) o.dims = cast_map<int64_t>(v);
  if (auto v = option(options, "trace")) o.trace_path = v.cast<std::string>();
  o.split.parts = static_cast<int>(o.devices.size());
  if (auto v = option(options, "parts")) o.split.parts = v.cast<int>();
  o.split.balance = Balance::TIME;  // the CLI's default for bench
  if (auto v = option(options, "balance")) o.split.balance = balance_from_name(v.cast<std::string>());
  if (auto v = option(options, "profile_runs")) o.split.profile_runs = v.cast<int>();
  o.split.dims = o.dims;
  o.commit = ONNXPIPE_COMMIT;
  return o;
}

// Runs the bench with the GIL released (Ctrl-C interrupts the wait); returns (columns, rows, mismatches, max_abs_diff).
py::tuple bench(const std::string& source, const py::dict& options) {
  struct Table {
    std::vector<cli::Field> fields;
    std::vector<cli::Row> rows;
    detail::BenchSummary summary;
  };
  // Interrupted, the bench stops after the measurement in progress (or at the next step of its split).
  const CancelFlag cancel;
  detail::BenchOptions parsed = bench_options(options);
  parsed.split.cancelled = cancel.question();
  const Table result = call_interruptibly(
      [source, parsed = std::move(parsed), cancelled = cancel.question()]() mutable {
        Table table;
        detail::Bench bench(source, std::move(parsed));
        const std::vector<cli::BenchColumn> columns = cli::bench_columns(bench);
        table.fields = cli::fields_of(columns);
        table.summary = bench.run([&](const detail::Measurement& m) {
          if (cancelled()) throw Error(ErrorCode::CANCELLED, "bench interrupted");
          table.rows.push_back(cli::row_of(columns, m));
        });
        return table;
      },
      &cancel);
  const auto& [fields, rows, summary] = result;
  py::list names;
  for (const cli::Field& field : fields) names.append(field.name);
  py::list table;
  for (const cli::Row& row : rows) {
    py::list cells;
    for (const cli::Cell& cell : row) cells.append(cell_object(cell));
    table.append(cells);
  }
  return py::make_tuple(names, table, summary.mismatches, summary.max_abs_diff);
}

}  // namespace

void bind_bench(py::module_& m) { m.def("bench", &bench, py::arg("source"), py::arg("options")); }

}  // namespace onnxpipe::python
