#pragma once
// Where a session runs: `cpu` (all cores), `cpu:T` (T intra-op threads), `cpu:T@C0-C1` (those threads pinned to
// cores C0..C1, 0-based), `cuda:K` (ONNX Runtime's CUDA provider on device K). Any of them may end in `=CAP`, the
// memory its stage may use (`cuda:0=40GiB`, `cpu:2@0-1=6GiB`): a byte count with an optional unit.
#include <cstdint>
#include <string>
#include <vector>

namespace onnxpipe {

enum class DeviceKind { CPU, CUDA };

struct DeviceSpec {
  DeviceKind kind = DeviceKind::CPU;
  int threads = 0;         // CPU intra-op threads, the calling thread included; 0 = one per hardware thread
  std::vector<int> cores;  // CPU cores the threads are pinned to, in order (thread i on cores[i % size]); empty: free
  int device_id = 0;       // CUDA device
  int64_t capacity = -1;   // bytes the stage on this device may hold; -1: not given (see placement.h)

  bool is_cuda() const { return kind == DeviceKind::CUDA; }
  // Threads actually used: `threads`, or the hardware concurrency when 0.
  int thread_count() const;
  // The canonical text: parse_device(to_string()) == *this.
  std::string to_string() const;
  bool operator==(const DeviceSpec& other) const;
};

// Throws Error(USAGE) naming the text and the accepted forms; cores must exist on this machine.
DeviceSpec parse_device(const std::string& text);
// A comma-separated list: "cpu:1@0,cpu:1@1".
std::vector<DeviceSpec> parse_devices(const std::string& list);

// A byte count: a number (decimals allowed with a unit) and an optional unit B, KiB, MiB, GiB, TiB (powers of 1024)
// or KB, MB, GB, TB (powers of 1000): "6GiB", "1.5GB", "4096". Throws Error(USAGE) naming the text.
int64_t parse_bytes(const std::string& text);
// Bytes for a person: "5.1 GiB", "640 MiB", "12 KiB", "512 B" (binary units, one decimal under 10).
std::string bytes_text(int64_t bytes);

// What is wrong with running these devices at once on this machine, as a warning: more CPU threads than hardware
// threads (stages then compete for cores), or a core that two pinned devices share. Empty when nothing is.
std::string contention_warning(const std::vector<DeviceSpec>& devices);

// Host memory the kernel could give without swapping (MemAvailable of /proc/meminfo), in bytes; -1 when unknown.
int64_t host_memory_available();

// Pins the calling thread to the first core of a pinned CPU device (the thread that calls Run is one of the session's
// intra-op threads); does nothing for other devices. Throws Error(RUNTIME) when the OS refuses.
void pin_current_thread(const DeviceSpec& device);

}  // namespace onnxpipe
