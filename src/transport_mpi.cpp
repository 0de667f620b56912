#include "transport_mpi.h"

#include <mpi.h>
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // Open MPI's MPIX_Query_cuda_support
#endif

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "log.h"

namespace onnxpipe::detail {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kHeartbeatTag = 1;
int header_tag(int channel) { return 16 + 2 * channel; }
int data_tag(int channel) { return 17 + 2 * channel; }
constexpr int64_t kBlock = int64_t(1) << 30;  // MPI counts are ints

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw Error(ErrorCode::RUNTIME, std::string(call) + ": " + std::string(text, static_cast<size_t>(length)));
}

std::string cuda_detection(bool* aware) {
  *aware = false;
#if defined(MPIX_CUDA_AWARE_SUPPORT)
  // The compile-time macro says what the headers' build offers; the call what the loaded library does.
  const int at_run = MPIX_Query_cuda_support();
  *aware = MPIX_CUDA_AWARE_SUPPORT && at_run == 1;
  return "MPIX_CUDA_AWARE_SUPPORT " + std::to_string(MPIX_CUDA_AWARE_SUPPORT) + ", MPIX_Query_cuda_support() " +
         std::to_string(at_run);
#else
  return "unknown (no MPIX_Query_cuda_support in this MPI)";
#endif
}

// Posts one contiguous message per value (per 1 GiB block of it) on `tag`: MPI moves a contiguous message with a
// single copy (Open MPI's shared memory with CMA: the receiver reads the sender's buffer itself), while a
// non-contiguous datatype goes as a pipeline of fragments that needs both sides polling. All at once: one exchange.
template <typename Post>
void post_blocks(const std::vector<char*>& data, const std::vector<int64_t>& bytes, std::vector<MPI_Request>& requests,
                 Post post) {
  for (size_t i = 0; i < data.size(); ++i) {
    char* p = data[i];
    for (int64_t left = bytes[i]; left > 0;) {
      const int64_t n = std::min(left, kBlock);
      requests.push_back(MPI_REQUEST_NULL);
      post(p, static_cast<int>(n), &requests.back());
      p += n;
      left -= n;
    }
  }
}

class MpiTransport : public Transport {
 public:
  explicit MpiTransport(double timeout_s) : timeout_(std::chrono::duration<double>(std::max(timeout_s, 0.1))) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_MULTIPLE) {
      MPI_Finalize();
      throw Error(ErrorCode::RUNTIME,
                  "this MPI does not provide MPI_THREAD_MULTIPLE (got level " + std::to_string(provided) + ")");
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    MPI_Get_processor_name(name, &length);
    std::vector<char> names(static_cast<size_t>(size_) * MPI_MAX_PROCESSOR_NAME);
    check(MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm_),
          "MPI_Allgather");
    for (int r = 0; r < size_; ++r) hosts_.emplace_back(names.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME);
    cuda_support_ = cuda_detection(&cuda_aware_);
    last_seen_.assign(static_cast<size_t>(size_), Clock::now());
    lost_.resize(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      if (r != rank_) watched_.push_back(r);
    }
    sent_.assign(static_cast<size_t>(size_), 0);
    received_.assign(static_cast<size_t>(size_), 0);
    heartbeats_ = std::thread([this] { beat(); });
  }

  ~MpiTransport() override {
    // Every rank comes here before MPI is finalized; heartbeats go on meanwhile, so a rank lost now is seen too.
    bool clean = !any_lost() && !failed_;
    if (clean) {
      MPI_Request barrier;
      clean = MPI_Ibarrier(comm_, &barrier) == MPI_SUCCESS;
      try {
        if (clean) wait_for([&] { return test(&barrier); }, -1, nullptr, Wait::CONTROL, true);
      } catch (const Error&) {
        clean = false;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    heartbeats_.join();
    if (!clean) {
      log(LogLevel::WARN, "rank " + std::to_string(rank_) +
                              (failed_ ? ": leaving with an error" : ": a rank was lost") + ", aborting the MPI job");
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    drain_heartbeats();
    MPI_Comm_free(&comm_);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& host(int rank) const override { return hosts_.at(static_cast<size_t>(rank)); }
  bool cuda_aware() const override { return cuda_aware_; }
  std::string cuda_support() const override { return cuda_support_; }

  std::string lost(int peer) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return lost_.at(static_cast<size_t>(peer));
  }
  void leave_failed() override { failed_ = true; }

  Traffic traffic() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return {sent_, received_};
  }

  bool any_lost() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::any_of(lost_.begin(), lost_.end(), [](const std::string& s) { return !s.empty(); });
  }

  void send(int peer, int channel, const Header& header, const std::vector<const void*>& data) override {
    throw_if_lost(peer);
    auto head = std::make_unique<std::string>(encode_header(header));
    std::vector<int64_t> bytes;
    for (const ValueHeader& v : header.values) bytes.push_back(v.bytes);
    count_bytes(sent_, peer, bytes);
    std::vector<MPI_Request> requests(1);
    check(MPI_Isend(head->data(), static_cast<int>(head->size()), MPI_BYTE, peer, header_tag(channel), comm_,
                    &requests[0]),
          "MPI_Isend");
    std::vector<char*> buffers;  // read only: MPI_Isend takes const buffers
    for (const void* d : data) buffers.push_back(const_cast<char*>(static_cast<const char*>(d)));
    post_blocks(buffers, bytes, requests, [&](char* p, int n, MPI_Request* r) {
      check(MPI_Isend(p, n, MPI_BYTE, peer, data_tag(channel), comm_, r), "MPI_Isend");
    });
    try {
      wait_for([&] { return test_all(requests); }, peer, nullptr, Wait::DATA);
    } catch (...) {
      abandon(std::move(head));  // MPI may still read it
      throw;
    }
  }

  Header receive(int peer, int channel, std::vector<Tensor>& values, const std::atomic<bool>* cancelled,
                 double* data_us) override {
    MPI_Message message;
    MPI_Status status;
    wait_for(
        [&] {
          int found = 0;
          check(MPI_Improbe(peer, header_tag(channel), comm_, &found, &message, &status), "MPI_Improbe");
          return found != 0;
        },
        peer, cancelled, channel == kControlChannel ? Wait::CONTROL : Wait::IDLE);
    int length = 0;
    MPI_Get_count(&status, MPI_BYTE, &length);
    std::string head(static_cast<size_t>(length), '\0');
    check(MPI_Mrecv(head.data(), length, MPI_BYTE, &message, MPI_STATUS_IGNORE), "MPI_Mrecv");
    Header header = decode_header(head);
    values.clear();
    std::vector<char*> data;
    std::vector<int64_t> bytes;
    for (const ValueHeader& v : header.values) {
      Tensor& t = values.emplace_back();
      t.dtype = v.dtype;
      t.shape = v.shape;
      t.data.resize(static_cast<size_t>(v.bytes));
      data.push_back(reinterpret_cast<char*>(t.data.data()));
      bytes.push_back(v.bytes);
    }
    count_bytes(received_, peer, bytes);
    // The transfer's time: from the receives posted (the tensors allocated) to the last byte.
    const auto posted = Clock::now();
    std::vector<MPI_Request> requests;
    post_blocks(data, bytes, requests, [&](char* p, int n, MPI_Request* r) {
      check(MPI_Irecv(p, n, MPI_BYTE, peer, data_tag(channel), comm_, r), "MPI_Irecv");
    });
    try {
      wait_for([&] { return test_all(requests); }, peer, cancelled, Wait::DATA);
    } catch (...) {
      for (MPI_Request& r : requests) {
        if (r != MPI_REQUEST_NULL) MPI_Cancel(&r);
      }
      for (Tensor& t : values) abandon(std::make_unique<std::string>(), std::move(t.data));  // MPI may write them
      throw;
    }
    if (data_us) *data_us = std::chrono::duration<double, std::micro>(Clock::now() - posted).count();
    return header;
  }

 private:
  static bool test(MPI_Request* request) {
    int done = 0;
    check(MPI_Test(request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  static bool test_all(std::vector<MPI_Request>& requests) {
    int done = 0;
    check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
    return done != 0;
  }

  void throw_if_lost(int peer) const {
    const std::string why = peer >= 0 ? lost(peer) : std::string();
    if (!why.empty()) throw Error(ErrorCode::RUNTIME, why);
  }

  // How long a wait sleeps between polls. MPI moves a message only while this rank polls, and a rank computes on the
  // same cores: a poll sleeps (a yield would hand the core to a computing thread for a whole time slice), a waking
  // sleeper gets the core back at once, and each wake-up costs the computing threads a few microseconds. DATA: bytes
  // on their way (a message whose header arrived, a send), polled every few microseconds. IDLE: the next message on
  // a data channel, which may be a run away: sleeps of a twentieth of the time waited so far (noticing it at most
  // 5% late), up to 1 ms. CONTROL: nothing hurries, up to 10 ms.
  enum class Wait { DATA, IDLE, CONTROL };

  // Polls `done` until it holds; throws when `peer` is lost (any watched peer when any_peer), or when *cancelled.
  template <typename Done>
  void wait_for(Done done, int peer, const std::atomic<bool>* cancelled, Wait wait, bool any_peer = false) const {
    using std::chrono::microseconds;
    const auto start = Clock::now();
    const Clock::duration shortest = microseconds(wait == Wait::DATA ? 2 : 20);
    const Clock::duration longest = wait == Wait::DATA   ? microseconds(50)
                                    : wait == Wait::IDLE ? microseconds(1000)
                                                         : microseconds(10000);
    while (!done()) {
      if (any_peer && any_lost()) throw Error(ErrorCode::RUNTIME, "a rank was lost");
      throw_if_lost(peer);
      if (cancelled && cancelled->load()) throw Error(ErrorCode::CANCELLED, "cancelled");
      std::this_thread::sleep_for(std::clamp<Clock::duration>((Clock::now() - start) / 20, shortest, longest));
    }
  }

  void count_bytes(std::vector<int64_t>& counter, int peer, const std::vector<int64_t>& bytes) {
    int64_t total = 0;
    for (int64_t b : bytes) total += b;
    std::lock_guard<std::mutex> lock(mutex_);
    counter.at(static_cast<size_t>(peer)) += total;
  }

  // Keeps buffers an abandoned MPI request may still touch alive to the end of the process.
  void abandon(std::unique_ptr<std::string> head, std::vector<uint8_t> data = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    abandoned_heads_.push_back(std::move(head));
    abandoned_data_.push_back(std::move(data));
  }

  void drain_heartbeats() {
    while (true) {
      int found = 0;
      MPI_Message message;
      MPI_Status status;
      if (MPI_Improbe(MPI_ANY_SOURCE, kHeartbeatTag, comm_, &found, &message, &status) != MPI_SUCCESS || !found) break;
      int beat = 0;
      MPI_Mrecv(&beat, 1, MPI_INT, &message, MPI_STATUS_IGNORE);
      last_seen_.at(static_cast<size_t>(status.MPI_SOURCE)) = Clock::now();
    }
  }

  // The heartbeat thread: beats to the watched peers every timeout / 5, reads theirs, declares the silent ones lost.
  void beat() {
    const auto period = std::chrono::duration_cast<Clock::duration>(timeout_ / 5);
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      for (int peer : watched_) {
        MPI_Request request;
        if (MPI_Isend(&kBeat, 1, MPI_INT, peer, kHeartbeatTag, comm_, &request) == MPI_SUCCESS) {
          MPI_Request_free(&request);
        }
      }
      drain_heartbeats();
      const auto now = Clock::now();
      lock.lock();
      for (int peer : watched_) {
        const auto silent = std::chrono::duration<double>(now - last_seen_.at(static_cast<size_t>(peer)));
        std::string& why = lost_.at(static_cast<size_t>(peer));
        if (why.empty() && silent > timeout_) {
          why = "rank " + std::to_string(peer) + " (" + hosts_.at(static_cast<size_t>(peer)) +
                ") is lost: no heartbeat for " + std::to_string(silent.count()).substr(0, 4) + " s (rank timeout " +
                std::to_string(timeout_.count()).substr(0, 4) + " s)";
          log(LogLevel::WARN, "rank " + std::to_string(rank_) + ": " + why);
        }
      }
      wake_.wait_for(lock, period, [&] { return stopping_; });
    }
  }

  static constexpr int kBeat = 1;
  const std::chrono::duration<double> timeout_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  std::vector<std::string> hosts_;
  bool cuda_aware_ = false;
  std::string cuda_support_;
  std::vector<int> watched_;
  std::vector<Clock::time_point> last_seen_;  // heartbeat thread only (and the destructor after it)
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::string> lost_;  // guarded by mutex_
  std::vector<int64_t> sent_;      // value bytes per peer, guarded by mutex_
  std::vector<int64_t> received_;
  bool stopping_ = false;  // guarded by mutex_
  std::atomic<bool> failed_{false};
  std::vector<std::unique_ptr<std::string>> abandoned_heads_;
  std::vector<std::vector<uint8_t>> abandoned_data_;
  std::thread heartbeats_;
};

}  // namespace

std::unique_ptr<Transport> make_mpi_transport(double timeout_s) { return std::make_unique<MpiTransport>(timeout_s); }

}  // namespace onnxpipe::detail
