#include "transport.h"

#include <cstring>
#include <type_traits>

namespace onnxpipe::detail {
namespace {

// Fixed-size fields in host byte order: the ranks of one job run one build on one architecture.
class Writer {
 public:
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_string(const std::string& s) {
    put<int64_t>(static_cast<int64_t>(s.size()));
    out_ += s;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string get_string() {
    const auto n = get<int64_t>();
    if (n < 0) bad();
    need(static_cast<size_t>(n));
    std::string s = in_.substr(at_, static_cast<size_t>(n));
    at_ += static_cast<size_t>(n);
    return s;
  }
  void end() const {
    if (at_ != in_.size()) bad();
  }

 private:
  void need(size_t n) const {
    if (in_.size() - at_ < n) bad();
  }
  [[noreturn]] static void bad() { throw Error(ErrorCode::INTERNAL, "a message header that does not decode"); }
  const std::string& in_;
  size_t at_ = 0;
};

std::atomic<Transport*> g_transport{nullptr};

}  // namespace

std::string encode_header(const Header& header) {
  Writer w;
  w.put(static_cast<int32_t>(header.kind));
  w.put(header.request);
  w.put<int32_t>(header.stage);
  w.put(header.run_us);
  w.put(header.wire_us);
  w.put(header.bytes_in);
  w.put(static_cast<int32_t>(header.code));
  w.put_string(header.text);
  w.put<int64_t>(static_cast<int64_t>(header.values.size()));
  for (const ValueHeader& v : header.values) {
    w.put_string(v.name);
    w.put(static_cast<int32_t>(v.dtype));
    w.put<int64_t>(static_cast<int64_t>(v.shape.size()));
    for (int64_t d : v.shape) w.put(d);
    w.put(v.bytes);
  }
  return w.take();
}

Header decode_header(const std::string& bytes) {
  Reader r(bytes);
  Header h;
  h.kind = static_cast<MessageKind>(r.get<int32_t>());
  h.request = r.get<int64_t>();
  h.stage = r.get<int32_t>();
  h.run_us = r.get<double>();
  h.wire_us = r.get<double>();
  h.bytes_in = r.get<int64_t>();
  h.code = static_cast<ErrorCode>(r.get<int32_t>());
  h.text = r.get_string();
  const auto count = r.get<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    ValueHeader& v = h.values.emplace_back();
    v.name = r.get_string();
    v.dtype = static_cast<DType>(r.get<int32_t>());
    const auto rank = r.get<int64_t>();
    for (int64_t d = 0; d < rank; ++d) v.shape.push_back(r.get<int64_t>());
    v.bytes = r.get<int64_t>();
  }
  r.end();
  return h;
}

Transport* current_transport() { return g_transport.load(); }
void set_current_transport(Transport* transport) { g_transport.store(transport); }

}  // namespace onnxpipe::detail
