#include "onnxpipe/tensor.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "half.h"
#include "onnxpipe/error.h"

namespace onnxpipe {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
  const char* npy;  // numpy descr without the byte order character; nullptr when numpy has no such dtype
};

constexpr DTypeInfo kDTypes[] = {
    {DType::UNDEFINED, "undefined", 0, nullptr},
    {DType::FLOAT, "float", 4, "f4"},
    {DType::UINT8, "uint8", 1, "u1"},
    {DType::INT8, "int8", 1, "i1"},
    {DType::UINT16, "uint16", 2, "u2"},
    {DType::INT16, "int16", 2, "i2"},
    {DType::INT32, "int32", 4, "i4"},
    {DType::INT64, "int64", 8, "i8"},
    {DType::STRING, "string", 0, nullptr},
    {DType::BOOL, "bool", 1, "b1"},
    {DType::FLOAT16, "float16", 2, "f2"},
    {DType::DOUBLE, "double", 8, "f8"},
    {DType::UINT32, "uint32", 4, "u4"},
    {DType::UINT64, "uint64", 8, "u8"},
    {DType::COMPLEX64, "complex64", 8, "c8"},
    {DType::COMPLEX128, "complex128", 16, "c16"},
    {DType::BFLOAT16, "bfloat16", 2, nullptr},
};

const DTypeInfo* find_info(DType dtype) {
  for (const auto& info : kDTypes) {
    if (info.dtype == dtype) return &info;
  }
  return nullptr;
}

// ---- .npy ----

constexpr char kNpyMagic[] = "\x93NUMPY";
constexpr size_t kNpyMagicSize = 6;

std::string npy_shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

// The header is a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
// numpy always writes these three keys; we read just enough of the literal to find them.
class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& text, const std::string& path) : text_(text), path_(path) {}

  void parse(std::string& descr, bool& fortran_order, std::vector<int64_t>& shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = parse_string();
      expect(':');
      skip_space();
      if (key == "descr") {
        descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran_order = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        shape = parse_tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    if (!have_descr || !have_order || !have_shape) fail("missing 'descr', 'fortran_order' or 'shape'");
  }

 private:
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::INVALID_DATA, path_ + ": bad .npy header: " + what + " in " + text_);
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a string");
    size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string value = text_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return value;
  }
  bool parse_bool() {
    for (const char* word : {"True", "False"}) {
      size_t n = std::strlen(word);
      if (text_.compare(pos_, n, word) == 0) {
        pos_ += n;
        return word[0] == 'T';
      }
    }
    fail("expected True or False");
  }
  std::vector<int64_t> parse_tuple() {
    std::vector<int64_t> values;
    expect('(');
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension");
      int64_t value = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("dimension too large");
        value = value * 10 + (text_[pos_++] - '0');
      }
      // Python 2 era files may write long integers as 3L.
      if (peek() == 'L') ++pos_;
      values.push_back(value);
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        fail("expected ',' or ')'");
      }
    }
    ++pos_;
    return values;
  }

  const std::string& text_;
  const std::string& path_;
  size_t pos_ = 0;
};

uint32_t read_le(const unsigned char* bytes, int count) {
  uint32_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

void byte_swap(std::vector<uint8_t>& data, size_t element_size) {
  for (size_t i = 0; i + element_size <= data.size(); i += element_size) {
    std::reverse(data.begin() + i, data.begin() + i + element_size);
  }
}

// ---- comparison ----

float bfloat16_to_float(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

template <typename T>
T load(const uint8_t* data, int64_t i) {
  T value;
  std::memcpy(&value, data + i * sizeof(T), sizeof(T));
  return value;
}

// Element i of a real floating-point tensor, as a double.
double float_at(const Tensor& t, int64_t i) {
  const uint8_t* d = t.bytes();
  switch (t.dtype) {
    case DType::FLOAT:
      return load<float>(d, i);
    case DType::DOUBLE:
      return load<double>(d, i);
    case DType::FLOAT16:
      return detail::half_to_float(load<uint16_t>(d, i));
    case DType::BFLOAT16:
      return bfloat16_to_float(load<uint16_t>(d, i));
    default:
      throw Error(ErrorCode::INTERNAL, "float_at: not a floating-point dtype: " + dtype_name(t.dtype));
  }
}

// Integers are compared exactly in their own type; the difference is reported as a double.
struct IntValue {
  bool is_unsigned;
  int64_t s;
  uint64_t u;
  double as_double() const { return is_unsigned ? double(u) : double(s); }
  bool operator==(const IntValue& o) const { return is_unsigned ? u == o.u : s == o.s; }
};

IntValue int_at(const Tensor& t, int64_t i) {
  const uint8_t* d = t.bytes();
  switch (t.dtype) {
    case DType::INT8:
      return {false, load<int8_t>(d, i), 0};
    case DType::INT16:
      return {false, load<int16_t>(d, i), 0};
    case DType::INT32:
      return {false, load<int32_t>(d, i), 0};
    case DType::INT64:
      return {false, load<int64_t>(d, i), 0};
    case DType::UINT8:
      return {true, 0, load<uint8_t>(d, i)};
    case DType::BOOL:
      return {true, 0, uint64_t(load<uint8_t>(d, i) != 0)};
    case DType::UINT16:
      return {true, 0, load<uint16_t>(d, i)};
    case DType::UINT32:
      return {true, 0, load<uint32_t>(d, i)};
    case DType::UINT64:
      return {true, 0, load<uint64_t>(d, i)};
    default:
      throw Error(ErrorCode::INTERNAL, "int_at: not an integer dtype: " + dtype_name(t.dtype));
  }
}

bool is_float(DType dtype) {
  return dtype == DType::FLOAT || dtype == DType::DOUBLE || dtype == DType::FLOAT16 || dtype == DType::BFLOAT16;
}

bool is_complex(DType dtype) { return dtype == DType::COMPLEX64 || dtype == DType::COMPLEX128; }

// Folds one element's difference into `diff`. `abs_diff` is NaN when exactly one side is NaN.
void account(Difference& diff, double abs_diff, double expected_magnitude, bool match) {
  if (std::isnan(abs_diff)) abs_diff = std::numeric_limits<double>::infinity();
  diff.max_abs = std::max(diff.max_abs, abs_diff);
  if (expected_magnitude != 0 && abs_diff != 0) diff.max_rel = std::max(diff.max_rel, abs_diff / expected_magnitude);
  if (!match) ++diff.mismatches;
}

bool within(double a, double e, double rtol, double atol) {
  if (std::isnan(a) || std::isnan(e)) return std::isnan(a) && std::isnan(e);
  if (a == e) return true;
  if (std::isinf(a) || std::isinf(e)) return false;
  return std::fabs(a - e) <= atol + rtol * std::fabs(e);
}

}  // namespace

size_t dtype_size(DType dtype) {
  const DTypeInfo* info = find_info(dtype);
  return info ? info->size : 0;
}

std::string dtype_name(DType dtype) {
  const DTypeInfo* info = find_info(dtype);
  return info ? info->name : "dtype(" + std::to_string(static_cast<int>(dtype)) + ")";
}

DType dtype_from_name(const std::string& name) {
  for (const auto& info : kDTypes) {
    if (name == info.name) return info.dtype;
  }
  throw Error(ErrorCode::USAGE, "unknown dtype '" + name + "'");
}

int64_t Tensor::element_count() const {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

void Tensor::own() {
  if (!is_borrowed()) return;
  data.assign(borrowed.data, borrowed.data + borrowed.size);
  borrowed = BorrowedBytes{};
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

void check_tensor(const std::string& name, const Tensor& tensor) {
  const std::string where = "input '" + name + "': ";
  for (int64_t d : tensor.shape) {
    if (d < 0) throw Error(ErrorCode::USAGE, where + "negative dimension in " + shape_text(tensor.shape));
  }
  const int64_t count = tensor.element_count();
  if (tensor.dtype == DType::STRING) {
    if (static_cast<int64_t>(tensor.strings.size()) != count) {
      throw Error(ErrorCode::USAGE,
                  where + std::to_string(tensor.strings.size()) + " strings for shape " + shape_text(tensor.shape));
    }
    return;
  }
  const size_t item = dtype_size(tensor.dtype);
  if (item == 0) throw Error(ErrorCode::USAGE, where + "unsupported dtype " + dtype_name(tensor.dtype));
  if (tensor.byte_size() != static_cast<size_t>(count) * item) {
    throw Error(ErrorCode::USAGE, where + std::to_string(tensor.byte_size()) + " bytes for " +
                                      dtype_name(tensor.dtype) + " " + shape_text(tensor.shape));
  }
}

Tensor make_tensor(DType dtype, std::vector<int64_t> shape) {
  for (int64_t d : shape) {
    if (d < 0) throw Error(ErrorCode::USAGE, "make_tensor: negative dimension in shape " + shape_text(shape));
  }
  if (dtype == DType::UNDEFINED) throw Error(ErrorCode::USAGE, "make_tensor: undefined dtype");
  Tensor tensor;
  tensor.dtype = dtype;
  tensor.shape = std::move(shape);
  if (dtype == DType::STRING) {
    tensor.strings.resize(static_cast<size_t>(tensor.element_count()));
  } else {
    tensor.data.resize(static_cast<size_t>(tensor.element_count()) * dtype_size(dtype));
  }
  return tensor;
}

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::IO, path + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(ErrorCode::IO, path + ": read failed");

  auto bad = [&](const std::string& what) { return Error(ErrorCode::INVALID_DATA, path + ": " + what); };
  if (bytes.size() < kNpyMagicSize + 4 || bytes.compare(0, kNpyMagicSize, kNpyMagic) != 0) {
    throw bad("not a .npy file");
  }
  const auto* raw = reinterpret_cast<const unsigned char*>(bytes.data());
  int major = raw[6];
  size_t header_start, header_len;
  if (major == 1) {
    header_start = 10;
    header_len = read_le(raw + 8, 2);
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw bad("truncated .npy header");
    header_start = 12;
    header_len = read_le(raw + 8, 4);
  } else {
    throw bad("unsupported .npy format version " + std::to_string(major) + "." + std::to_string(raw[7]));
  }
  if (header_start + header_len > bytes.size()) throw bad("truncated .npy header");
  std::string header = bytes.substr(header_start, header_len);

  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  NpyHeaderParser(header, path).parse(descr, fortran_order, shape);
  if (fortran_order) throw bad("Fortran-ordered arrays are not supported (save with C order)");

  // The count, and its bytes at up to 16 an element, must fit: a wrapped product could match a short payload.
  int64_t count = 1;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(count, d, &count) || count > std::numeric_limits<int64_t>::max() / 16) {
      throw bad("shape " + shape_text(shape) + " is too large");
    }
  }
  Tensor tensor;
  tensor.shape = shape;
  size_t payload = bytes.size() - header_start - header_len;
  const char* body = bytes.data() + header_start + header_len;

  char order = descr.empty() ? '\0' : descr[0];
  std::string kind = descr.size() > 1 ? descr.substr(1) : "";
  if (order != '<' && order != '>' && order != '|' && order != '=') throw bad("unsupported dtype '" + descr + "'");

  // Fixed-width strings: 'S' bytes, 'U' UTF-32 code points; numpy drops trailing NULs.
  if (!kind.empty() && (kind[0] == 'S' || kind[0] == 'U')) {
    size_t width = 0;
    try {
      width = std::stoul(kind.substr(1));
    } catch (const std::exception&) {
      throw bad("unsupported dtype '" + descr + "'");
    }
    size_t unit = kind[0] == 'U' ? 4 : 1, needed = 0;
    if (__builtin_mul_overflow(width, unit, &needed) ||
        __builtin_mul_overflow(needed, static_cast<size_t>(count), &needed) || payload != needed) {
      throw bad("data size does not match shape");
    }
    tensor.dtype = DType::STRING;
    tensor.strings.reserve(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(body) + i * width * unit;
      std::string text;
      for (size_t c = 0; c < width; ++c) {
        uint32_t cp = unit == 1 ? p[c]
                                : (order == '>' ? (uint32_t(p[4 * c]) << 24 | uint32_t(p[4 * c + 1]) << 16 |
                                                   uint32_t(p[4 * c + 2]) << 8 | p[4 * c + 3])
                                                : read_le(p + 4 * c, 4));
        if (cp == 0) break;
        if (unit == 1 || cp < 0x80) {
          text += static_cast<char>(cp);
        } else if (cp < 0x800) {
          text += static_cast<char>(0xc0 | (cp >> 6));
          text += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
          text += static_cast<char>(0xe0 | (cp >> 12));
          text += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
          text += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
          text += static_cast<char>(0xf0 | (cp >> 18));
          text += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
          text += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
          text += static_cast<char>(0x80 | (cp & 0x3f));
        }
      }
      tensor.strings.push_back(std::move(text));
    }
    return tensor;
  }

  const DTypeInfo* info = nullptr;
  for (const auto& candidate : kDTypes) {
    if (candidate.npy && kind == candidate.npy) info = &candidate;
  }
  if (!info) throw bad("unsupported dtype '" + descr + "'");
  tensor.dtype = info->dtype;
  if (payload != static_cast<size_t>(count) * info->size) {
    throw bad("data size " + std::to_string(payload) + " bytes does not match shape " + shape_text(shape) + " of " +
              info->name + (payload < static_cast<size_t>(count) * info->size ? " (truncated)" : ""));
  }
  tensor.data.assign(body, body + payload);
  if (order == '>' && info->size > 1) {
    // Complex numbers swap each of their two halves.
    byte_swap(tensor.data, is_complex(info->dtype) ? info->size / 2 : info->size);
  }
  return tensor;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  int64_t count = tensor.element_count();
  std::string descr;
  size_t string_width = 0;
  if (tensor.dtype == DType::STRING) {
    if (tensor.strings.size() != static_cast<size_t>(count)) {
      throw Error(ErrorCode::INTERNAL, path + ": string tensor has " + std::to_string(tensor.strings.size()) +
                                           " strings for shape " + shape_text(tensor.shape));
    }
    for (const auto& s : tensor.strings) string_width = std::max(string_width, s.size());
    string_width = std::max<size_t>(string_width, 1);  // numpy has no zero-width 'S0' arrays
    descr = "|S" + std::to_string(string_width);
  } else {
    const DTypeInfo* info = find_info(tensor.dtype);
    if (!info || !info->npy) {
      throw Error(ErrorCode::USAGE, path + ": " + dtype_name(tensor.dtype) + " tensors have no .npy dtype");
    }
    if (tensor.byte_size() != static_cast<size_t>(count) * info->size) {
      throw Error(ErrorCode::INTERNAL, path + ": tensor data size does not match shape " + shape_text(tensor.shape));
    }
    descr = std::string(info->size == 1 ? "|" : "<") + info->npy;
  }

  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + npy_shape_text(tensor.shape) + ", }";
  // Pad with spaces and a newline so that the data starts on a 64-byte boundary, like numpy does. Version 1.0 has a
  // 2-byte header length; longer headers (many dimensions) need version 2.0 and its 4-byte length.
  auto padded = [&](size_t prefix) { return (prefix + header.size() + 1 + 63) / 64 * 64 - prefix; };
  bool v1 = padded(kNpyMagicSize + 4) <= 65535;
  size_t len = padded(kNpyMagicSize + (v1 ? 4 : 6));
  header.append(len - header.size() - 1, ' ');
  header += '\n';

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(ErrorCode::IO, path + ": cannot open for writing");
  out.write(kNpyMagic, kNpyMagicSize);
  if (v1) {
    const char version_len[] = {1, 0, char(len & 0xff), char(len >> 8)};
    out.write(version_len, 4);
  } else {
    const char version_len[] = {
        2, 0, char(len & 0xff), char((len >> 8) & 0xff), char((len >> 16) & 0xff), char(len >> 24)};
    out.write(version_len, 6);
  }
  out << header;
  if (tensor.dtype == DType::STRING) {
    for (const auto& s : tensor.strings) {
      out << s;
      out.write(std::string(string_width - s.size(), '\0').data(), std::streamsize(string_width - s.size()));
    }
  } else {
    out.write(reinterpret_cast<const char*>(tensor.bytes()), std::streamsize(tensor.byte_size()));
  }
  out.close();
  if (!out) throw Error(ErrorCode::IO, path + ": write failed");
}

Tensor read_tensor_file(const std::string& path) {
  auto ends_with = [&](const std::string& suffix) {
    return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".npy")) return read_npy(path);
  if (ends_with(".pb")) return read_tensor_pb(path);
  throw Error(ErrorCode::USAGE, path + ": unknown tensor file type (expected .npy or .pb)");
}

Difference compare(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  Difference diff;
  if (actual.dtype != expected.dtype || actual.shape != expected.shape) {
    diff.shape_mismatch = true;
    diff.bitwise_equal = false;
    diff.mismatches = std::max(actual.element_count(), expected.element_count());
    return diff;
  }
  int64_t count = expected.element_count();
  DType dtype = expected.dtype;
  for (const Tensor* t : {&actual, &expected}) {
    bool consistent = dtype == DType::STRING ? t->strings.size() == static_cast<size_t>(count)
                                             : t->byte_size() == static_cast<size_t>(count) * dtype_size(dtype);
    if (!consistent)
      throw Error(ErrorCode::INTERNAL, "compare: tensor data does not match its shape " + shape_text(t->shape));
  }
  if (dtype == DType::STRING) {
    for (int64_t i = 0; i < count; ++i) {
      if (actual.strings[i] != expected.strings[i]) ++diff.mismatches;
    }
    diff.bitwise_equal = diff.mismatches == 0;
    return diff;
  }
  diff.bitwise_equal =
      actual.byte_size() == 0 || std::memcmp(actual.bytes(), expected.bytes(), actual.byte_size()) == 0;
  if (is_float(dtype)) {
    for (int64_t i = 0; i < count; ++i) {
      double a = float_at(actual, i), e = float_at(expected, i);
      bool match = within(a, e, rtol, atol);
      account(diff, a == e || (std::isnan(a) && std::isnan(e)) ? 0.0 : std::fabs(a - e), std::fabs(e), match);
    }
  } else if (is_complex(dtype)) {
    for (int64_t i = 0; i < count; ++i) {
      double ar, ai, er, ei;
      if (dtype == DType::COMPLEX64) {
        ar = load<float>(actual.bytes(), 2 * i), ai = load<float>(actual.bytes(), 2 * i + 1);
        er = load<float>(expected.bytes(), 2 * i), ei = load<float>(expected.bytes(), 2 * i + 1);
      } else {
        ar = load<double>(actual.bytes(), 2 * i), ai = load<double>(actual.bytes(), 2 * i + 1);
        er = load<double>(expected.bytes(), 2 * i), ei = load<double>(expected.bytes(), 2 * i + 1);
      }
      bool match = within(ar, er, rtol, atol) && within(ai, ei, rtol, atol);
      bool same = (ar == er || (std::isnan(ar) && std::isnan(er))) && (ai == ei || (std::isnan(ai) && std::isnan(ei)));
      account(diff, same ? 0.0 : std::hypot(ar - er, ai - ei), std::hypot(er, ei), match);
    }
  } else if (dtype_size(dtype) > 0) {
    for (int64_t i = 0; i < count; ++i) {
      IntValue a = int_at(actual, i), e = int_at(expected, i);
      account(diff, std::fabs(a.as_double() - e.as_double()), std::fabs(e.as_double()), a == e);
    }
  } else {
    throw Error(ErrorCode::INTERNAL, "compare: unsupported dtype " + dtype_name(dtype));
  }
  return diff;
}

}  // namespace onnxpipe
