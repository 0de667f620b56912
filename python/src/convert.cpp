#include "convert.h"

#include <cstring>
#include <mutex>

#include "onnxpipe/error.h"

namespace onnxpipe::python {

std::atomic<int64_t> input_bytes_copied{0};

namespace {

struct DTypeName {
  DType dtype;
  const char* numpy;
};
// numpy's names for the dtypes with a fixed size; BFLOAT16 travels as its uint16 bits.
constexpr DTypeName kNumpyNames[] = {
    {DType::FLOAT, "float32"},       {DType::DOUBLE, "float64"},        {DType::FLOAT16, "float16"},
    {DType::INT8, "int8"},           {DType::INT16, "int16"},           {DType::INT32, "int32"},
    {DType::INT64, "int64"},         {DType::UINT8, "uint8"},           {DType::UINT16, "uint16"},
    {DType::UINT32, "uint32"},       {DType::UINT64, "uint64"},         {DType::BOOL, "bool"},
    {DType::COMPLEX64, "complex64"}, {DType::COMPLEX128, "complex128"}, {DType::BFLOAT16, "uint16"},
};

DType dtype_of(const std::string& name, const py::dtype& dtype) {
  static const std::map<std::pair<char, py::ssize_t>, DType> kinds = {
      {{'f', 2}, DType::FLOAT16},   {{'f', 4}, DType::FLOAT},       {{'f', 8}, DType::DOUBLE}, {{'i', 1}, DType::INT8},
      {{'i', 2}, DType::INT16},     {{'i', 4}, DType::INT32},       {{'i', 8}, DType::INT64},  {{'u', 1}, DType::UINT8},
      {{'u', 2}, DType::UINT16},    {{'u', 4}, DType::UINT32},      {{'u', 8}, DType::UINT64}, {{'b', 1}, DType::BOOL},
      {{'c', 8}, DType::COMPLEX64}, {{'c', 16}, DType::COMPLEX128},
  };
  const auto it = kinds.find({dtype.kind(), dtype.itemsize()});
  if (it != kinds.end()) return it->second;
  throw Error(ErrorCode::USAGE, "input '" + name + "': numpy dtype " + py::str(py::handle(dtype)).cast<std::string>() +
                                    " has no ONNX counterpart");
}

py::dtype numpy_dtype(DType dtype) {
  for (const DTypeName& entry : kNumpyNames) {
    if (entry.dtype == dtype) return py::dtype(entry.numpy);
  }
  throw Error(ErrorCode::INTERNAL, "no numpy dtype for " + dtype_name(dtype));
}

std::vector<int64_t> shape_of(const py::array& array) {
  return std::vector<int64_t>(array.shape(), array.shape() + array.ndim());
}

Tensor string_tensor(const py::array& array) {
  Tensor tensor;
  tensor.dtype = DType::STRING;
  tensor.shape = shape_of(array);
  for (const py::handle item : array.attr("ravel")().attr("tolist")()) {
    tensor.strings.push_back(py::isinstance<py::bytes>(item) ? item.cast<std::string>()
                                                             : py::str(item).cast<std::string>());
  }
  return tensor;
}

// Arrays released off the GIL, waiting for release_arrays. Never destroyed: a library thread may still queue one while
// the process exits.
struct ReleasedArrays {
  std::mutex mutex;
  std::vector<PyObject*> arrays;
};
ReleasedArrays& released_arrays() {
  static auto* released = new ReleasedArrays;
  return *released;
}

// The owner of a borrowed array's bytes: a strong reference, dropped at once under the GIL, else queued.
std::shared_ptr<const void> array_owner(py::array array) {
  return std::shared_ptr<const void>(array.release().ptr(), [](PyObject* array_object) {
    if (Py_IsInitialized() && PyGILState_Check()) {
      Py_DECREF(array_object);
      return;
    }
    ReleasedArrays& released = released_arrays();
    std::lock_guard<std::mutex> lock(released.mutex);
    released.arrays.push_back(array_object);
  });
}

}  // namespace

void release_arrays() {
  std::vector<PyObject*> arrays;
  {
    ReleasedArrays& released = released_arrays();
    std::lock_guard<std::mutex> lock(released.mutex);
    if (released.arrays.empty()) return;
    arrays.swap(released.arrays);
  }
  for (PyObject* array : arrays) Py_DECREF(array);
}

Tensor to_tensor(const std::string& name, const py::handle& value) {
  py::array array = py::array::ensure(value);
  if (!array) {
    PyErr_Clear();
    throw Error(ErrorCode::USAGE, "input '" + name + "': not convertible to a numpy array");
  }
  const char kind = array.dtype().kind();
  if (kind == 'U' || kind == 'S' || kind == 'O') return string_tensor(array);
  if (!array.dtype().attr("isnative").cast<bool>()) {  // a big-endian array: converted once, then borrowed
    array = array.attr("astype")(array.dtype().attr("newbyteorder")("="));
    input_bytes_copied += static_cast<int64_t>(array.nbytes());
  }
  Tensor tensor;
  tensor.dtype = dtype_of(name, array.dtype());
  tensor.shape = shape_of(array);
  const auto bytes = static_cast<size_t>(array.nbytes());
  constexpr int kBorrowable =
      static_cast<int>(py::array::c_style) | static_cast<int>(py::detail::npy_api::NPY_ARRAY_ALIGNED_);
  if ((array.flags() & kBorrowable) == kBorrowable) {
    const auto* data = static_cast<const uint8_t*>(array.data());
    tensor.borrowed = {array_owner(std::move(array)), data, bytes};
    return tensor;
  }
  // Another layout: numpy copies it straight into the Tensor's buffer, viewed as a C-contiguous array.
  tensor.data.resize(bytes);
  const py::capsule no_owner(tensor.data.data(), [](void*) {});
  py::array view(array.dtype(), std::vector<py::ssize_t>(array.shape(), array.shape() + array.ndim()),
                 tensor.data.data(), no_owner);
  py::module_::import("numpy").attr("copyto")(view, array);
  input_bytes_copied += static_cast<int64_t>(bytes);
  return tensor;
}

TensorMap to_tensor_map(const py::handle& feeds) {
  release_arrays();
  if (!py::isinstance<py::dict>(feeds)) {
    throw Error(ErrorCode::USAGE, "inputs: expected a dict of input name -> array, got " +
                                      py::str(py::handle(py::type::of(feeds))).cast<std::string>());
  }
  TensorMap tensors;
  for (auto item : py::reinterpret_borrow<py::dict>(feeds)) {
    const auto name = py::cast<std::string>(item.first);
    tensors.emplace(name, to_tensor(name, item.second));
  }
  return tensors;
}

py::object to_array(Tensor tensor) {
  std::vector<py::ssize_t> shape(tensor.shape.begin(), tensor.shape.end());
  if (tensor.dtype == DType::STRING) {
    py::array result(py::dtype("O"), shape);
    py::list flat;
    for (const std::string& text : tensor.strings) {
      PyObject* decoded = PyUnicode_DecodeUTF8(text.data(), static_cast<py::ssize_t>(text.size()), nullptr);
      if (decoded) {
        flat.append(py::reinterpret_steal<py::object>(decoded));
      } else {
        PyErr_Clear();
        flat.append(py::bytes(text));  // not UTF-8: the raw bytes
      }
    }
    result.attr("reshape")(-1)[py::slice(0, static_cast<py::ssize_t>(tensor.strings.size()), 1)] = flat;
    return std::move(result);
  }
  const py::dtype dtype = numpy_dtype(tensor.dtype);
  tensor.own();
  auto* owner = new Tensor(std::move(tensor));
  const py::capsule capsule(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(dtype, shape, owner->data.data(), capsule);
}

py::dict to_dict(TensorMap tensors) {
  py::dict result;
  for (auto& [name, tensor] : tensors) result[py::str(name)] = to_array(std::move(tensor));
  return result;
}

py::dict value_dict(const ValueDesc& value) {
  py::dict result;
  result["name"] = value.name;
  result["dtype"] = dtype_name(value.dtype);
  if (value.has_shape) {
    py::list dims;
    for (const Dim& dim : value.dims) {
      if (dim.value >= 0) {
        dims.append(dim.value);
      } else if (!dim.param.empty()) {
        dims.append(dim.param);
      } else {
        dims.append(py::none());
      }
    }
    result["shape"] = dims;
  } else {
    result["shape"] = py::none();
  }
  result["bytes"] = value.bytes >= 0 ? py::object(py::int_(value.bytes)) : py::object(py::none());
  return result;
}

py::list value_list(const std::vector<ValueDesc>& values) {
  py::list result;
  for (const ValueDesc& value : values) result.append(value_dict(value));
  return result;
}

py::object error_object(const Error& error) {
  py::object stage = py::none();
  if (error.stage()) {
    const StageContext& s = *error.stage();
    stage = py::dict(py::arg("kind") = s.kind, py::arg("index") = s.index, py::arg("piece") = s.piece,
                     py::arg("device") = s.device);
  }
  py::object argument = py::none();
  if (error.argument()) {
    const ArgumentContext& a = *error.argument();
    argument = py::dict(py::arg("field") = a.field, py::arg("entry") = a.entry, py::arg("reason") = a.reason,
                        py::arg("missing") = a.missing);
  }
  return py::module_::import("onnxpipe._errors")
      .attr("make_error")(error_code_name(error.code()), error.what(), stage, argument);
}

void raise_error(const Error& error) {
  const py::object exception = error_object(error);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exception.ptr())), exception.ptr());
}

}  // namespace onnxpipe::python
