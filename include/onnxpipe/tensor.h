#pragma once
// Host tensors: what users hand to onnxpipe and get back. Plain data, no ORT or protobuf types.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace onnxpipe {

// Values are those of onnx.TensorProto.DataType, so they convert without a table.
enum class DType : int32_t {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  COMPLEX64 = 14,
  COMPLEX128 = 15,
  BFLOAT16 = 16,
};

// Bytes per element; 0 for STRING and UNDEFINED.
size_t dtype_size(DType dtype);
// "float", "int64", ... (the ONNX names in lower case); dtype_from_name throws Error(USAGE) on an unknown name.
std::string dtype_name(DType dtype);
DType dtype_from_name(const std::string& name);

// Bytes a tensor reads in place (zero-copy inputs, e.g. a NumPy array's buffer): `owner` keeps `data` valid and is
// released by whichever thread drops the tensor's last copy. Read-only: nothing writes through a view.
struct BorrowedBytes {
  std::shared_ptr<const void> owner;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// A dense row-major tensor. Numeric data lives in `data` (dtype_size * element_count bytes, little endian), or in
// `borrowed` when its owner is set (then `data` is empty): read it through bytes(), byte_size() and as<T>(), which
// see both. STRING tensors use `strings` instead.
struct Tensor {
  DType dtype = DType::UNDEFINED;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
  std::vector<std::string> strings;
  BorrowedBytes borrowed;

  int64_t element_count() const;
  bool is_borrowed() const { return borrowed.owner != nullptr; }
  const uint8_t* bytes() const { return is_borrowed() ? borrowed.data : data.data(); }
  size_t byte_size() const { return is_borrowed() ? borrowed.size : data.size(); }
  // Copies borrowed bytes into `data` and drops the view; nothing for an owned tensor. Writers call it first.
  void own();
  template <typename T>
  const T* as() const {
    return reinterpret_cast<const T*>(bytes());
  }
  template <typename T>
  T* as() {
    own();
    return reinterpret_cast<T*>(data.data());
  }
};

// An empty tensor of the given dtype and shape, zero-filled.
Tensor make_tensor(DType dtype, std::vector<int64_t> shape);

// "[1,3,224,224]", as messages name shapes.
std::string shape_text(const std::vector<int64_t>& shape);

// Checks that a tensor's buffer matches its dtype and shape (no negative dimension, a dtype with a size, as many
// bytes or strings as elements) before anything reads it: Error(USAGE) "input 'NAME': ..." otherwise.
void check_tensor(const std::string& name, const Tensor& tensor);

// .npy (numpy format 1.0/2.0, C order, the dtypes above) and .pb (serialized onnx.TensorProto) files.
// read_tensor_file picks by extension. Errors name the file.
Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const Tensor& tensor);
Tensor read_tensor_pb(const std::string& path);
Tensor read_tensor_file(const std::string& path);

// How two tensors differ: largest absolute and relative (|a-b| / |expected|, where expected != 0) difference, and
// how many elements break |a-b| <= atol + rtol*|expected| (NaN matches NaN; strings must be equal). A dtype or shape
// difference counts every element as a mismatch and sets shape_mismatch.
struct Difference {
  double max_abs = 0;
  double max_rel = 0;
  bool bitwise_equal = true;
  bool shape_mismatch = false;
  int64_t mismatches = 0;
  bool pass() const { return mismatches == 0 && !shape_mismatch; }
};
Difference compare(const Tensor& actual, const Tensor& expected, double rtol, double atol);

}  // namespace onnxpipe
