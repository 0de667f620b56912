#pragma once
// Model I/O, part 1: the protobuf streaming reader and writer (onnx 1.12 / protobuf 3.21). Owns the wire format: a
// model file parsed with its large raw_data fields left on disk (their offsets are recorded, like external data),
// and a model written field by field from borrowed messages, its weight bytes copied file to file by the kernel, so
// weight bytes are never held twice. Like the other model-I/O files it may include protobuf and onnx headers; no
// other file of the library does.
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace onnxpipe::detail {

// raw_data fields above this stay on disk when loading; shape inference sees the data of smaller tensors only (enough
// for Reshape shapes and the like), and the sizing model keeps them real.
constexpr size_t kSmallTensorBytes = 64u << 10;

// "PATH: strerror(errno)".
std::string sys_error(const std::string& path);
// The folder of a path ("." for a bare name) and a name relative to a folder (absolute names stay as they are).
std::string dir_of(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// A byte range of a file: weight data left on disk (an external data file, or a large raw_data field of the model
// file itself, skipped when loading).
struct FileRange {
  std::string path;
  int64_t offset = 0;
  int64_t length = 0;
};

// Reads a file range into memory that the caller owns.
void read_range(const FileRange& r, char* out);

// Initializer name -> offset and length in the model file of its raw_data, left on disk by parse_model.
using DeferredRanges = std::unordered_map<std::string, std::pair<int64_t, int64_t>>;

// Parses a ModelProto from `fd`, leaving raw_data fields over kSmallTensorBytes of the main graph's initializers on
// disk (listed in *deferred). Throws Error(IO) on a read error, Error(INVALID_MODEL) naming `path` when the bytes are
// not a ModelProto.
void parse_model(int fd, const std::string& path, int64_t file_bytes, onnx::ModelProto* model,
                 DeferredRanges* deferred);

// Where serialized bytes go: protobuf messages and small fields are buffered, weight ranges are copied from their
// file without passing through a message.
class Sink {
 public:
  virtual ~Sink() = default;
  void bytes(const void* p, size_t n);
  void zeros(size_t n);
  // Needs the message's cached size (ByteSizeLong called since its last change).
  void message(const google::protobuf::MessageLite& m);
  // Tag and length of a length-delimited field whose payload follows.
  void field_header(int field, size_t length);
  virtual void range(const FileRange& r) = 0;
  int64_t position() const { return written_ + static_cast<int64_t>(buf_.size()); }

 protected:
  virtual void spill() {}
  std::string buf_;
  int64_t written_ = 0;
};

// Serializes into one string of a known size.
class StringSink : public Sink {
 public:
  explicit StringSink(size_t total) { buf_.reserve(total); }
  void range(const FileRange& r) override;
  std::string take() { return std::move(buf_); }
};

// Writes a file; ranges are copied kernel-side (copy_file_range), never through our memory.
class FileSink : public Sink {
 public:
  explicit FileSink(std::string path);
  void range(const FileRange& r) override;
  void close();

 private:
  void spill() override;
  void drain();
  void write_all(const char* p, size_t n);
  std::string path_;
  Fd fd_;
};

// Makes `meta` an external tensor at `location` (relative to its model's folder), `offset`, `length`; other
// fields (raw_data included) are left as they are.
void set_external(const std::string& location, int64_t offset, int64_t length, onnx::TensorProto* meta);
// Starts an external tensor in a data file: pads to onnx's alignment and records location/offset/length in `meta`.
void begin_external(FileSink& data, const std::string& location, int64_t length, onnx::TensorProto* meta);

// An initializer to write: its message, and where its raw_data comes from when not inside the message.
struct TensorEntry {
  const onnx::TensorProto* meta = nullptr;
  std::optional<FileRange> raw;
};

// A model assembled from a header, a small graph (name, inputs, outputs, value_info) and borrowed nodes and
// initializers, serialized field by field so that no weight is copied in memory. Field order does not matter to
// protobuf parsers: repeated fields are concatenated in the order they appear. byte_size() computes the cached sizes
// of the borrowed messages, so two writers must not share messages across threads.
class ModelWriter {
 public:
  onnx::ModelProto header;  // no graph
  onnx::GraphProto graph;   // no nodes, no initializers
  std::vector<const onnx::NodeProto*> nodes;
  std::vector<TensorEntry> initializers;
  std::vector<const onnx::SparseTensorProto*> sparse_initializers;

  // Throws Error(INVALID_MODEL) when the graph exceeds protobuf's 2 GB limit. Call before write().
  size_t byte_size();
  void write(Sink& out) const;

 private:
  size_t graph_size_ = 0;
  std::vector<size_t> tensor_sizes_;
};

}  // namespace onnxpipe::detail
