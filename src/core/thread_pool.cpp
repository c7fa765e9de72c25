// core/thread_pool.cpp — ThreadPool implementation (condition-variable start, counted completion).
#include "core/thread_pool.h"

#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace kvant {

ThreadPool::ThreadPool(unsigned n_threads) : n_threads_(n_threads == 0 ? 1 : n_threads) {
  for (unsigned i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

static std::pair<int64_t, int64_t> split_range(int64_t n, unsigned parts, unsigned index) {
  const int64_t chunk = n / parts, rest = n % parts;
  const int64_t begin = int64_t(index) * chunk + std::min<int64_t>(index, rest);
  return {begin, begin + chunk + (int64_t(index) < rest ? 1 : 0)};
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, unsigned)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    pending_ = n_threads_ - 1;
    ++generation_;
  }
  start_cv_.notify_all();
  auto [b, e] = split_range(n, n_threads_, 0);
  if (b < e) fn(b, e, 0);
  std::unique_lock<std::mutex> lock(mutex_);
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::worker_loop(unsigned index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t, unsigned)>* job;
    int64_t n;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
    }
    auto [b, e] = split_range(n, n_threads_, index);
    if (b < e) (*job)(b, e, index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
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
