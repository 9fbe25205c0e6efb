// The CPU thread pool for compute. Fixed size, created once; the calling thread takes part.
// ParallelFor splits [0, n) into one contiguous range per thread, each a multiple of `grain`
// (for optimizer state, a quant block), so results never depend on scheduling: a kernel whose
// per-element work is independent gives bitwise the same answer for any thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace strata {

class ThreadPool {
 public:
  // threads >= 1 (the caller counts as one). 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end) over a partition of [0, n) whose cut points are multiples of grain.
  // Blocks until every range is done. One call at a time: a concurrent or nested call is a bug
  // and aborts. If fn throws, the first exception is rethrown here once every range has ended.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  // The job of the current generation.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  std::vector<std::pair<int64_t, int64_t>> ranges_;
  std::exception_ptr error_;  // first exception thrown by a worker in this generation
  std::atomic<bool> busy_{false};
};

// Splits [0, n) into `parts` contiguous ranges with cut points on multiples of grain.
std::vector<std::pair<int64_t, int64_t>> SplitRange(int64_t n, int64_t grain, int parts);

}  // namespace strata
