#include "proto_stream.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "onnxpipe/error.h"

namespace onnxpipe::detail {

namespace pbio = google::protobuf::io;
using google::protobuf::internal::WireFormatLite;

namespace {

constexpr int64_t kExternalAlignment = 4096;  // onnx aligns external tensors so they can be memory-mapped
constexpr size_t kCopyChunk = 4u << 20;

Error range_past_end(const FileRange& r) {
  return Error(ErrorCode::IO,
               r.path + ": ends before offset " + std::to_string(r.offset) + " + " + std::to_string(r.length));
}

// ---- Parsing with large raw_data fields left on disk ----
// A message is parsed field by field: the one length-delimited field we look into (`field`) goes to `take(length,
// rest)`, which reads its payload from `in`; the others are copied as bytes into `rest` and parsed by protobuf at the
// end into `message` (repeated fields merge in order).
template <typename Take>
bool parse_fields(pbio::CodedInputStream& in, int field, google::protobuf::MessageLite* message, const Take& take) {
  std::string rest;
  {
    pbio::StringOutputStream stream(&rest);
    pbio::CodedOutputStream co(&stream);
    const uint32_t wanted = WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
    for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
      if (tag != wanted) {
        if (!WireFormatLite::SkipField(&in, tag, &co)) return false;
        continue;
      }
      uint32_t length = 0;
      if (!in.ReadVarint32(&length) || !take(length, co)) return false;
    }
    if (!in.ConsumedEntireMessage()) return false;
  }
  return message->MergeFromString(rest);
}

// Runs `parse` on an embedded message of `length` bytes.
template <typename Parse>
bool within(pbio::CodedInputStream& in, uint32_t length, const Parse& parse) {
  const auto limit = in.PushLimit(static_cast<int>(length));
  if (!parse()) return false;
  in.PopLimit(limit);
  return true;
}

bool parse_tensor(pbio::CodedInputStream& in, onnx::TensorProto* t, int64_t* raw_offset, int64_t* raw_length) {
  return parse_fields(in, onnx::TensorProto::kRawDataFieldNumber, t, [&](uint32_t length, pbio::CodedOutputStream& co) {
    if (length > kSmallTensorBytes) {
      *raw_offset = in.CurrentPosition();
      *raw_length = length;
      return in.Skip(static_cast<int>(length));
    }
    std::string data;
    if (!in.ReadString(&data, static_cast<int>(length))) return false;
    co.WriteTag(
        WireFormatLite::MakeTag(onnx::TensorProto::kRawDataFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
    co.WriteVarint32(length);
    co.WriteString(data);
    *raw_offset = -1;  // a later raw_data field wins
    return true;
  });
}

bool parse_graph(pbio::CodedInputStream& in, onnx::GraphProto* g, DeferredRanges* deferred) {
  return parse_fields(in, onnx::GraphProto::kInitializerFieldNumber, g, [&](uint32_t length, pbio::CodedOutputStream&) {
    auto* t = g->add_initializer();
    int64_t offset = -1, raw_length = 0;
    if (!within(in, length, [&] { return parse_tensor(in, t, &offset, &raw_length); })) return false;
    if (offset >= 0) (*deferred)[t->name()] = {offset, raw_length};
    return true;
  });
}

}  // namespace

std::string sys_error(const std::string& path) { return path + ": " + std::strerror(errno); }

std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (!name.empty() && name[0] == '/') return name;
  return dir + "/" + name;
}

void read_range(const FileRange& r, char* out) {
  Fd fd(::open(r.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw Error(ErrorCode::IO, sys_error(r.path));
  int64_t done = 0;
  while (done < r.length) {
    const ssize_t n = ::pread(fd.fd, out + done, static_cast<size_t>(r.length - done), r.offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(ErrorCode::IO, sys_error(r.path));
    if (n == 0) throw range_past_end(r);
    done += n;
  }
}

void parse_model(int fd, const std::string& path, int64_t file_bytes, onnx::ModelProto* model,
                 DeferredRanges* deferred) {
  pbio::FileInputStream stream(fd, 1 << 20);
  pbio::CodedInputStream in(&stream);
  in.SetTotalBytesLimit(INT_MAX);
  const bool parsed =
      parse_fields(in, onnx::ModelProto::kGraphFieldNumber, model, [&](uint32_t length, pbio::CodedOutputStream&) {
        return within(in, length, [&] { return parse_graph(in, model->mutable_graph(), deferred); });
      });
  if (stream.GetErrno() != 0) {
    errno = stream.GetErrno();
    throw Error(ErrorCode::IO, sys_error(path));
  }
  if (!parsed)
    throw Error(ErrorCode::INVALID_MODEL, path + ": not an ONNX model or truncated (protobuf parse failed after " +
                                              std::to_string(in.CurrentPosition()) + " of " +
                                              std::to_string(file_bytes) + " bytes)");
  // Skipping a field seeks, and a seek past the end of the file succeeds: a truncated large raw_data parses.
  for (const auto& [name, range] : *deferred)
    if (range.first + range.second > file_bytes)
      throw Error(ErrorCode::INVALID_MODEL, path + ": not an ONNX model or truncated (the data of tensor '" + name +
                                                "' ends after the end of the file)");
}

void Sink::bytes(const void* p, size_t n) {
  buf_.append(static_cast<const char*>(p), n);
  spill();
}

void Sink::zeros(size_t n) {
  buf_.append(n, '\0');
  spill();
}

void Sink::message(const google::protobuf::MessageLite& m) {
  const size_t old = buf_.size();
  buf_.resize(old + static_cast<size_t>(m.GetCachedSize()));
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(&buf_[old]));
  spill();
}

void Sink::field_header(int field, size_t length) {
  uint8_t tmp[16];
  uint8_t* p = pbio::CodedOutputStream::WriteTagToArray(
      WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), tmp);
  p = pbio::CodedOutputStream::WriteVarint64ToArray(length, p);
  bytes(tmp, static_cast<size_t>(p - tmp));
}

void StringSink::range(const FileRange& r) {
  const size_t old = buf_.size();
  buf_.resize(old + static_cast<size_t>(r.length));
  read_range(r, &buf_[old]);
}

FileSink::FileSink(std::string path)
    : path_(std::move(path)), fd_(::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
  if (fd_.fd < 0) throw Error(ErrorCode::IO, sys_error(path_));
}

void FileSink::range(const FileRange& r) {
  drain();
  Fd src(::open(r.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (src.fd < 0) throw Error(ErrorCode::IO, sys_error(r.path));
  off_t in = static_cast<off_t>(r.offset);
  int64_t left = r.length;
  while (left > 0) {
    const ssize_t n = ::copy_file_range(src.fd, &in, fd_.fd, nullptr, static_cast<size_t>(left), 0);
    if (n > 0) {
      left -= n;
      continue;
    }
    if (n == 0) throw range_past_end(r);
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EBADF)
      throw Error(ErrorCode::IO, sys_error(path_));
    // No kernel copy between these files: go through a buffer.
    std::vector<char> chunk(static_cast<size_t>(std::min<int64_t>(left, kCopyChunk)));
    while (left > 0) {
      const FileRange part{r.path, static_cast<int64_t>(in),
                           std::min<int64_t>(left, static_cast<int64_t>(chunk.size()))};
      read_range(part, chunk.data());
      write_all(chunk.data(), static_cast<size_t>(part.length));
      in += part.length;
      left -= part.length;
    }
  }
  written_ += r.length;
}

void FileSink::close() {
  drain();
  const int rc = ::close(fd_.fd);
  fd_.fd = -1;
  if (rc != 0) throw Error(ErrorCode::IO, sys_error(path_));
}

void FileSink::spill() {
  if (buf_.size() >= kCopyChunk) drain();
}

void FileSink::drain() {
  write_all(buf_.data(), buf_.size());
  written_ += static_cast<int64_t>(buf_.size());
  buf_.clear();
}

void FileSink::write_all(const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_.fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw Error(ErrorCode::IO, sys_error(path_));
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void set_external(const std::string& location, int64_t offset, int64_t length, onnx::TensorProto* meta) {
  meta->set_data_location(onnx::TensorProto::EXTERNAL);
  meta->clear_external_data();
  const auto add = [meta](const char* key, const std::string& value) {
    auto* kv = meta->add_external_data();
    kv->set_key(key);
    kv->set_value(value);
  };
  add("location", location);
  add("offset", std::to_string(offset));
  add("length", std::to_string(length));
}

void begin_external(FileSink& data, const std::string& location, int64_t length, onnx::TensorProto* meta) {
  const int64_t offset = data.position();
  const int64_t aligned = (offset + kExternalAlignment - 1) / kExternalAlignment * kExternalAlignment;
  data.zeros(static_cast<size_t>(aligned - offset));
  set_external(location, aligned, length, meta);
}

size_t ModelWriter::byte_size() {
  const auto framed = [](int field, size_t size) {
    return WireFormatLite::TagSize(field, WireFormatLite::TYPE_MESSAGE) + WireFormatLite::LengthDelimitedSize(size);
  };
  graph_size_ = graph.ByteSizeLong();
  for (const auto* n : nodes) graph_size_ += framed(onnx::GraphProto::kNodeFieldNumber, n->ByteSizeLong());
  tensor_sizes_.clear();
  for (const auto& t : initializers) {
    size_t size = t.meta->ByteSizeLong();
    if (t.raw) size += framed(onnx::TensorProto::kRawDataFieldNumber, static_cast<size_t>(t.raw->length));
    tensor_sizes_.push_back(size);
    graph_size_ += framed(onnx::GraphProto::kInitializerFieldNumber, size);
  }
  for (const auto* s : sparse_initializers)
    graph_size_ += framed(onnx::GraphProto::kSparseInitializerFieldNumber, s->ByteSizeLong());
  if (graph_size_ > static_cast<size_t>(INT_MAX))
    throw Error(ErrorCode::INVALID_MODEL, "model graph exceeds protobuf's 2 GB limit: use external data");
  return header.ByteSizeLong() + framed(onnx::ModelProto::kGraphFieldNumber, graph_size_);
}

void ModelWriter::write(Sink& out) const {
  out.message(header);
  out.field_header(onnx::ModelProto::kGraphFieldNumber, graph_size_);
  out.message(graph);
  for (const auto* n : nodes) {
    out.field_header(onnx::GraphProto::kNodeFieldNumber, static_cast<size_t>(n->GetCachedSize()));
    out.message(*n);
  }
  for (size_t i = 0; i < initializers.size(); ++i) {
    const TensorEntry& t = initializers[i];
    out.field_header(onnx::GraphProto::kInitializerFieldNumber, tensor_sizes_[i]);
    out.message(*t.meta);
    if (t.raw) {
      out.field_header(onnx::TensorProto::kRawDataFieldNumber, static_cast<size_t>(t.raw->length));
      out.range(*t.raw);
    }
  }
  for (const auto* s : sparse_initializers) {
    out.field_header(onnx::GraphProto::kSparseInitializerFieldNumber, static_cast<size_t>(s->GetCachedSize()));
    out.message(*s);
  }
}

}  // namespace onnxpipe::detail
