#pragma once
// numpy <-> onnxpipe::Tensor, library structs -> Python dicts, and onnxpipe::Error -> onnxpipe.Error (with its code,
// stage and argument as attributes). Everything here runs with the GIL held.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "onnxpipe/error.h"
#include "onnxpipe/pipeline.h"
#include "onnxpipe/plan.h"
#include "onnxpipe/tensor.h"

namespace onnxpipe::python {

namespace py = pybind11;

// Bytes copied from numpy arrays into Tensors since the module was loaded (borrowed arrays add nothing), which the
// tests check.
extern std::atomic<int64_t> input_bytes_copied;

// An array (or anything numpy.asarray takes) as a Tensor: numeric dtypes by their numpy kind, float16 as FLOAT16,
// str/bytes/object arrays of strings as STRING. A C-contiguous, aligned, native-endian numeric array is borrowed: the
// Tensor reads its buffer in place and holds a reference to the array (see release_arrays). Any other array is copied
// once, straight from its memory in its own layout (ORT reads dense row-major buffers only).
Tensor to_tensor(const std::string& name, const py::handle& value);
TensorMap to_tensor_map(const py::handle& feeds);  // a dict name -> array

// Drops the arrays whose last borrowing Tensor died on a library thread: such a thread only queues the array (taking
// the GIL there would stall a stage behind Python code). Called with the GIL held wherever requests come and go.
void release_arrays();

// A Tensor as an array that owns the Tensor's buffer (moved into a capsule: no copy; a borrowed Tensor, an input
// passed through as an output, is copied so that no output aliases an input). STRING tensors become object arrays of
// str; BFLOAT16 becomes uint16 (its bits: numpy has no bfloat16).
py::object to_array(Tensor tensor);
py::dict to_dict(TensorMap tensors);

py::dict value_dict(const ValueDesc& value);
py::list value_list(const std::vector<ValueDesc>& values);

// The onnxpipe.Error (the subclass of its code) for an error; raise_error sets it as the pending Python exception
// (for an exception translator).
py::object error_object(const Error& error);
void raise_error(const Error& error);

// options[key], or a null object when it is absent or None (keyword arguments left at their default).
inline py::object option(const py::dict& options, const char* key) {
  return options.contains(key) && !options[key].is_none() ? py::object(options[key]) : py::object();
}

template <typename T>
std::map<std::string, T> cast_map(const py::handle& object) {
  std::map<std::string, T> result;
  if (object.is_none()) return result;
  for (auto item : py::reinterpret_borrow<py::dict>(object)) {
    result[py::cast<std::string>(item.first)] = py::cast<T>(item.second);
  }
  return result;
}

}  // namespace onnxpipe::python
