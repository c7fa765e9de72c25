// core/thread_pool.h — one persistent pool of worker threads; parallel_for splits [0, n) statically
// into one contiguous range per thread and returns when all ranges are done (one barrier per call).
// Workers spin briefly on an atomic generation counter before sleeping, so back-to-back ops (a decode
// step is dozens of them) do not pay a sleep/wake round trip each.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvant {

class ThreadPool {
 public:
  explicit ThreadPool(unsigned n_threads);  // n_threads includes the calling thread
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return n_threads_; }
  // Calls fn(begin, end, thread_index) for disjoint ranges covering [0, n). Not re-entrant.
  // min_per_thread: the smallest range worth a thread (tiny ops run on the calling thread alone).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, unsigned)>& fn,
                    int64_t min_per_thread = 1);

  // Physical cores when known, else hardware_concurrency.
  static unsigned default_threads();

 private:
  void worker_loop(unsigned index);

  unsigned n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_cv_;
  const std::function<void(int64_t, int64_t, unsigned)>* job_ = nullptr;
  int64_t job_n_ = 0;
  unsigned job_parts_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<unsigned> pending_{0};
  std::atomic<unsigned> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace kvant
