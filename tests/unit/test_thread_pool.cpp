// tests/unit/test_thread_pool.cpp — ThreadPool covers every index exactly once, across many
// back-to-back calls (the spin/sleep hand-off), with uneven sizes and more threads than items; chunked
// hand-out (parallel_chunks) likewise.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "test_support.h"

namespace kvant {
namespace {

TEST(ThreadPool, EveryIndexExactlyOnceOverManyCalls) {
  for (unsigned threads : {1u, 2u, 3u, 5u}) {
    ThreadPool pool(threads);
    for (int64_t n : {int64_t(1), int64_t(2), int64_t(3), int64_t(7), int64_t(64), int64_t(1001)}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int call = 0; call < 200; ++call) {
        pool.parallel_for(n, [&](int64_t b, int64_t e, unsigned t) {
          EXPECT_LT(t, threads);
          for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
        });
      }
      for (auto& h : hits) ASSERT_EQ(h.load(), 200);
    }
  }
}

TEST(ThreadPool, ChunksCoverEveryIndexOnceWithinChunkBounds) {
  for (unsigned threads : {1u, 2u, 5u}) {
    ThreadPool pool(threads);
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(64), int64_t(1001)}) {
      for (int64_t chunk : {int64_t(1), int64_t(3), int64_t(64), int64_t(5000)}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (int call = 0; call < 50; ++call) {
          pool.parallel_chunks(n, chunk, [&](int64_t b, int64_t e, unsigned t) {
            EXPECT_LT(t, threads);
            EXPECT_EQ(b % chunk, 0) << "chunk starts on a chunk boundary";
            EXPECT_LE(e - b, chunk);
            EXPECT_TRUE(e - b == chunk || e == n) << "only the last chunk is short";
            for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
          });
        }
        for (auto& h : hits) ASSERT_EQ(h.load(), 50) << "n " << n << " chunk " << chunk;
      }
    }
  }
}

TEST(ThreadPool, WorkersWakeAfterSleeping) {
  ThreadPool pool(3);
  std::atomic<int> total{0};
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // long enough for workers to sleep
    pool.parallel_for(30, [&](int64_t b, int64_t e, unsigned) { total.fetch_add(int(e - b)); });
  }
  EXPECT_EQ(total.load(), 90);
}

}  // namespace
}  // namespace kvant
