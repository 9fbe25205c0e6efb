#include "runtime/thread_pool.h"

#include "runtime/status.h"

namespace strata {

std::vector<std::pair<int64_t, int64_t>> SplitRange(int64_t n, int64_t grain, int parts) {
  STRATA_CHECK(n >= 0 && grain >= 1 && parts >= 1);
  const int64_t units = (n + grain - 1) / grain;
  std::vector<std::pair<int64_t, int64_t>> out;
  out.reserve(parts);
  for (int i = 0; i < parts; ++i) {
    const int64_t u0 = units * i / parts, u1 = units * (i + 1) / parts;
    out.emplace_back(std::min(n, u0 * grain), std::min(n, u1 * grain));
  }
  return out;
}

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    std::unique_lock<std::mutex> lock(mu_);
    start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    const auto* fn = fn_;
    const auto range = ranges_[index];
    lock.unlock();
    std::exception_ptr error;
    if (range.first < range.second) {
      try {
        (*fn)(range.first, range.second);
      } catch (...) {
        error = std::current_exception();
      }
    }
    lock.lock();
    if (error && !error_) error_ = error;
    if (--pending_ == 0) done_cv_.notify_one();
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  STRATA_CHECK(grain >= 1);
  // One call at a time (a nested or concurrent call would race on the job and deadlock).
  STRATA_CHECK(!busy_.exchange(true));
  struct Release {
    std::atomic<bool>& b;
    ~Release() { b = false; }
  } release{busy_};
  if (workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ranges_ = SplitRange(n, grain, size());
    fn_ = &fn;
    pending_ = static_cast<int>(workers_.size());
    error_ = nullptr;
    ++generation_;
  }
  start_cv_.notify_all();
  std::exception_ptr mine;
  try {
    if (ranges_[0].first < ranges_[0].second) fn(ranges_[0].first, ranges_[0].second);
  } catch (...) {
    mine = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });  // fn must outlive every worker's use
  fn_ = nullptr;
  if (!mine) mine = error_;
  error_ = nullptr;
  lock.unlock();
  if (mine) std::rethrow_exception(mine);
}

}  // namespace strata
