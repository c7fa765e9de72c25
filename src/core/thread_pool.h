// core/thread_pool.h — one persistent pool of worker threads; parallel_for splits [0, n) statically
// into one contiguous range per thread, parallel_chunks hands out fixed-size chunks from an atomic
// counter; both return when all work is done (one barrier per call).
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

  // Calls fn(begin, end, thread_index) for chunks of `chunk` items (the last may be shorter) handed out
  // from an atomic counter: threads that finish early take more, so one slow thread (a busy core, a VM
  // steal) does not hold up the op. Same barrier as parallel_for.
  void parallel_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t, unsigned)>& fn);

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
