#pragma once
// The pipeline's synchronisation: a bounded FIFO queue and a counting gate, both blocking on condition variables
// (no polling) and both closable, so that a shutdown wakes every waiter.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace onnxpipe::detail {

template <typename T>
class BlockingQueue {
 public:
  explicit BlockingQueue(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Blocks while full. Returns false (and leaves `item` as it was) once the queue is closed.
  bool push(T& item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  // Blocks while empty. After close(), still hands out what is left, then returns false.
  bool pop(T& item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return false;
    item = std::move(items_.front());
    items_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return true;
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<T> items_;
  bool closed_ = false;
};

// At most `limit` holders at a time: acquire blocks while full, returns false once closed.
class Gate {
 public:
  explicit Gate(int limit) : free_(limit < 1 ? 1 : limit) {}

  bool acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    freed_.wait(lock, [&] { return closed_ || free_ > 0; });
    if (closed_) return false;
    --free_;
    return true;
  }

  // As acquire(), but also false once `stop()` returns true: asked (without the lock) each `poll` the wait lasts.
  bool acquire(const std::function<bool()>& stop, std::chrono::milliseconds poll) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!freed_.wait_for(lock, poll, [&] { return closed_ || free_ > 0; })) {
      lock.unlock();
      const bool stopped = stop();
      lock.lock();
      if (stopped) return false;
    }
    if (closed_) return false;
    --free_;
    return true;
  }

  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++free_;
    }
    freed_.notify_one();
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    freed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable freed_;
  int free_;
  bool closed_ = false;
};

}  // namespace onnxpipe::detail
