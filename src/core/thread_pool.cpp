// core/thread_pool.cpp — ThreadPool: atomic generation counter for start, atomic pending count for
// completion; spin with a pause hint first, then sleep on a condition variable.
#include "core/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace kvant {

namespace {

// Pause-hint spins before a waiting thread sleeps: ~10 ms on a current Xeon (a pause is ~100 cycles), so
// workers stay awake across the gaps between a token's ops and between tokens. Waking a sleeping worker
// costs tens of microseconds, far more on a virtual machine (the idle vCPU has to be rescheduled);
// 2,000 spins cost 13 % of 16-thread decode speed on the 16-core Xeon VM (bench/RESULTS.md).
constexpr int kSpinIterations = 100000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

std::pair<int64_t, int64_t> split_range(int64_t n, unsigned parts, unsigned index) {
  const int64_t chunk = n / parts, rest = n % parts;
  const int64_t begin = int64_t(index) * chunk + std::min<int64_t>(index, rest);
  return {begin, begin + chunk + (int64_t(index) < rest ? 1 : 0)};
}

}  // namespace

ThreadPool::ThreadPool(unsigned n_threads) : n_threads_(n_threads == 0 ? 1 : n_threads) {
  for (unsigned i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, unsigned)>& fn,
                              int64_t min_per_thread) {
  if (n <= 0) return;
  const int64_t useful = std::max<int64_t>(1, n / std::max<int64_t>(1, min_per_thread));
  const unsigned parts = unsigned(std::min<int64_t>(n_threads_, useful));
  if (parts == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  job_parts_ = parts;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // Publishing under the mutex pairs with sleepers' predicate check (no lost wake-up).
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_acquire) > 0) start_cv_.notify_all();
  auto [b, e] = split_range(n, parts, 0);
  if (b < e) fn(b, e, 0);
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpinIterations) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

void ThreadPool::parallel_chunks(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t, unsigned)>& fn) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(n_threads_, n_chunks), [&](int64_t, int64_t, unsigned thread) {
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < n_chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      fn(c * chunk, std::min(n, (c + 1) * chunk), thread);
    }
  });
}

void ThreadPool::worker_loop(unsigned index) {
  uint64_t seen = 0;
  for (;;) {
    int spin = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spin < kSpinIterations) {
      cpu_relax();
      ++spin;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_acq_rel);
      start_cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    const auto* job = job_;
    if (index < job_parts_) {
      auto [b, e] = split_range(job_n_, job_parts_, index);
      if (b < e) (*job)(b, e, index);
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

unsigned ThreadPool::default_threads() {
  // Count distinct (physical id, core id) pairs from /proc/cpuinfo; fall back to logical CPUs.
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "physical id") phys = value;
    if (key == "core id") cores.insert({phys, value});
  }
  unsigned logical = std::thread::hardware_concurrency();
  if (!cores.empty()) return unsigned(cores.size());
  return logical == 0 ? 1 : logical;
}

}  // namespace kvant
