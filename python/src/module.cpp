// _onnxpipe: the native half of the onnxpipe package. The Pythonic API (Plan, Report, Pipeline with futures, bench
// frames, logging) is in onnxpipe/__init__.py; this module converts and releases the GIL around the library's work.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "convert.h"
#include "interrupt.h"
#include "onnxpipe/error.h"
#include "onnxpipe/log.h"
#include "onnxpipe/split.h"
#include "onnxpipe/verify.h"
#include "pipeline.h"

namespace onnxpipe::python {

void bind_bench(py::module_& module);

namespace {

std::string split(const std::string& model, const py::dict& options) {
  SplitOptions split;
  if (auto v = option(options, "parts")) split.parts = v.cast<int>();
  if (auto v = option(options, "balance")) split.balance = balance_from_name(v.cast<std::string>());
  if (auto v = option(options, "cuts")) split.cuts = v.cast<std::vector<std::string>>();
  if (auto v = option(options, "dims")) split.dims = cast_map<int64_t>(v);
  if (auto v = option(options, "out_dir")) split.output_dir = v.cast<std::string>();
  if (auto v = option(options, "force")) split.force = v.cast<bool>();
  if (auto v = option(options, "device")) split.device = v.cast<std::string>();
  if (auto v = option(options, "profile_runs")) split.profile_runs = v.cast<int>();
  if (auto v = option(options, "costs_file")) split.costs_file = v.cast<std::string>();
  const CancelFlag cancel;  // Ctrl-C: the split stops at its next step, leaving nothing behind
  split.cancelled = cancel.question();
  return call_interruptibly([model, split] { return split_model(model, split).to_json(); }, &cancel);
}

std::string load_plan(const std::string& dir) {
  py::gil_scoped_release release;
  return Plan::load(dir).to_json();
}

py::dict inspect(const std::string& model, const py::dict& options) {
  InspectOptions inspect;
  if (auto v = option(options, "dims")) inspect.dims = cast_map<int64_t>(v);
  if (auto v = option(options, "balance")) inspect.balance = balance_from_name(v.cast<std::string>());
  if (auto v = option(options, "candidates")) inspect.candidates = v.cast<int>();
  const ModelSummary s = call_interruptibly([model, inspect] { return inspect_model(model, inspect); });
  py::dict d;
  d["path"] = s.path;
  d["file_bytes"] = s.file_bytes;
  d["ir_version"] = s.ir_version;
  d["producer"] = s.producer;
  d["opsets"] = py::cast(s.opsets);
  d["node_count"] = s.node_count;
  d["op_counts"] = py::cast(s.op_counts);
  d["weight_count"] = s.weight_count;
  d["weight_bytes"] = s.weight_bytes;
  d["external_data"] = s.external_data;
  d["function_count"] = s.function_count;
  d["inputs"] = value_list(s.inputs);
  d["outputs"] = value_list(s.outputs);
  d["boundary_count"] = s.boundary_count;
  d["balance"] = s.balance;
  py::list cuts;
  for (const CutCandidate& c : s.best_cuts) {
    cuts.append(py::dict(py::arg("boundary") = c.boundary, py::arg("after_node") = c.after_node,
                         py::arg("tensors") = c.tensors, py::arg("crossing_bytes") = c.crossing_bytes,
                         py::arg("cost_before_share") = c.cost_before_share));
  }
  d["best_cuts"] = cuts;
  return d;
}

py::list verify(const std::string& model, const std::string& plan_dir, const py::dict& options) {
  VerifyOptions verify;
  if (auto v = option(options, "inputs")) verify.inputs = to_tensor_map(v);
  if (auto v = option(options, "dims")) verify.dims = cast_map<int64_t>(v);
  if (auto v = option(options, "rtol")) verify.rtol = v.cast<double>();
  if (auto v = option(options, "atol")) verify.atol = v.cast<double>();
  if (auto v = option(options, "seed")) verify.seed = v.cast<uint64_t>();
  const CancelFlag cancel;  // Ctrl-C: verify stops at its next step
  verify.cancelled = cancel.question();
  const VerifyReport report = call_interruptibly(
      [model, plan_dir, verify = std::move(verify)] { return verify_split(model, plan_dir, verify); }, &cancel);
  py::list rows;
  for (const OutputCheck& check : report.outputs) {
    py::dict row;
    row["output"] = check.name;
    row["max_abs"] = check.diff.max_abs;
    row["max_rel"] = check.diff.max_rel;
    row["mismatches"] = check.diff.mismatches;
    row["bitwise_equal"] = check.diff.bitwise_equal;
    row["shape_mismatch"] = check.diff.shape_mismatch;
    row["ok"] = check.diff.pass();
    row["dtype"] = check.declared ? py::object(py::str(dtype_name(check.declared->dtype))) : py::object(py::none());
    row["shape"] = check.declared ? py::object(py::str(check.declared->dims_text())) : py::object(py::none());
    rows.append(row);
  }
  return rows;
}

py::dict run_pieces_py(const std::string& plan_dir, const py::handle& feeds) {
  TensorMap outputs =
      call_interruptibly([plan_dir, inputs = to_tensor_map(feeds)] { return run_pieces(plan_dir, inputs); });
  release_arrays();
  return to_dict(std::move(outputs));
}

// Routes the library's log channel to `callback(level, text)` (levels as LogLevel's values); None: drops it.
// The callback may be called from any library thread: it takes the GIL, and does nothing once Python is finalizing.
void set_log_callback_py(int min_level, py::object callback) {
  if (callback.is_none()) {
    set_log_callback(LogLevel::ERROR, {});
    return;
  }
  // The last copy of the callable may be dropped on a library thread: release the object under the GIL.
  std::shared_ptr<py::object> target(new py::object(std::move(callback)), [](py::object* object) {
    if (!Py_IsInitialized()) return;  // leaked at exit rather than touched without an interpreter
    py::gil_scoped_acquire gil;
    delete object;
  });
  set_log_callback(static_cast<LogLevel>(min_level), [target](LogLevel level, const std::string& text) {
    if (!Py_IsInitialized() || _Py_IsFinalizing()) return;
    py::gil_scoped_acquire gil;
    try {
      (*target)(static_cast<int>(level), text);
    } catch (py::error_already_set& error) {
      error.discard_as_unraisable("onnxpipe: the log callback");
    }
  });
}

// A Tensor made from the array and turned back into an array: what a pipeline does to an Identity's data.
py::object round_trip(const py::handle& value) { return to_array(to_tensor("value", value)); }

}  // namespace

}  // namespace onnxpipe::python

PYBIND11_MODULE(_onnxpipe, m) {
  using namespace onnxpipe;
  using namespace onnxpipe::python;
  m.doc() = "Native half of onnxpipe (use the onnxpipe package, not this module).";
  py::register_exception_translator([](std::exception_ptr failure) {
    try {
      if (failure) std::rethrow_exception(failure);
    } catch (const Error& error) {
      raise_error(error);
    }
  });
  m.def("split", &split, py::arg("model"), py::arg("options"));
  m.def("load_plan", &load_plan, py::arg("dir"));
  m.def("inspect", &inspect, py::arg("model"), py::arg("options"));
  m.def("verify", &verify, py::arg("model"), py::arg("plan_dir"), py::arg("options"));
  m.def("run_pieces", &run_pieces_py, py::arg("plan_dir"), py::arg("feeds"));
  m.def("set_log_callback", &set_log_callback_py, py::arg("min_level"), py::arg("callback"));
  m.def("round_trip", &round_trip, py::arg("value"));
  m.def("input_bytes_copied", [] { return input_bytes_copied.load(); });
  // The bytes a Tensor made from `value` reads, and whether it borrowed them (the tests compare with the array's).
  m.def("input_view", [](const py::handle& value) {
    const Tensor tensor = to_tensor("value", value);
    return py::make_tuple(reinterpret_cast<uintptr_t>(tensor.bytes()), tensor.is_borrowed());
  });
  m.def("release_arrays", &release_arrays);
  m.def("join_abandoned", &join_abandoned);
  m.def("parse_devices", [](const std::string& list) {
    std::vector<std::string> devices;
    for (const DeviceSpec& device : parse_devices(list)) devices.push_back(device.to_string());
    return devices;
  });
  m.attr("LOG_LEVELS") = py::dict(
      py::arg("DEBUG") = static_cast<int>(LogLevel::DEBUG), py::arg("INFO") = static_cast<int>(LogLevel::INFO),
      py::arg("WARN") = static_cast<int>(LogLevel::WARN), py::arg("ERROR") = static_cast<int>(LogLevel::ERROR));
  bind_pipeline(m);
  bind_bench(m);
}
