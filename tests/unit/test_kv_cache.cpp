// tests/unit/test_kv_cache.cpp — KvCache layout and memory accounting, with and without host vectors
// (a device backend keeps the vectors itself, so its session's cache holds none).
#include <gtest/gtest.h>

#include <cstring>

#include "kv/kv_cache.h"

namespace kvant {
namespace {

KvCacheConfig config(uint32_t n_ctx, KvType k, KvType v, uint32_t window) {
  KvCacheConfig c;
  c.n_layer = 4;
  c.n_head_kv = 2;
  c.head_dim = 64;
  c.n_ctx = n_ctx;
  c.type_k = k;
  c.type_v = v;
  c.window = window;
  c.max_batch = 16;
  return c;
}

TEST(KvCache, LayoutOnlyCacheMatchesTheHostOneInEverySize) {
  for (KvType t : {KvType::F16, KvType::Q8_0, KvType::TURBO_4B}) {
    const KvCacheConfig c = config(1000, t, KvType::TURBO_3B, 128);
    Expected<KvCache> host = KvCache::create(c);
    Expected<KvCache> layout = KvCache::create(c, /*host_storage=*/false);
    ASSERT_TRUE(host.has_value()) << host.error();
    ASSERT_TRUE(layout.has_value()) << layout.error();
    EXPECT_TRUE(host->has_host_storage());
    EXPECT_FALSE(layout->has_host_storage());
    EXPECT_EQ(layout->bytes_per_token(), host->bytes_per_token());
    EXPECT_EQ(layout->window_bytes(), host->window_bytes());
    EXPECT_EQ(layout->window_ring_slots(), host->window_ring_slots());
    EXPECT_EQ(layout->k_vector_bytes(), host->k_vector_bytes());
    EXPECT_EQ(layout->v_vector_bytes(), host->v_vector_bytes());
    EXPECT_EQ(layout->description(), host->description());
    EXPECT_EQ(layout->cells().used(), 0u);
  }
}

TEST(KvCache, HostVectorsAreDistinctAndWritable) {
  Expected<KvCache> cache = KvCache::create(config(64, KvType::Q8_0, KvType::TURBO_4B, 32));
  ASSERT_TRUE(cache.has_value()) << cache.error();
  uint8_t* k = cache->k_vector(3, 1, 63);
  uint8_t* v = cache->v_vector(3, 1, 63);
  std::memset(k, 0x5A, cache->k_vector_bytes());
  std::memset(v, 0xA5, cache->v_vector_bytes());
  EXPECT_EQ(cache->k_vector(3, 1, 63)[0], 0x5A);
  EXPECT_EQ(cache->v_vector(3, 1, 63)[cache->v_vector_bytes() - 1], 0xA5);
  EXPECT_EQ(cache->k_vector(3, 1, 62)[0], 0);  // the neighbour is untouched
  EXPECT_NE(cache->k_window(0, 0, 0), cache->v_window(0, 0, 0));
}

// A context larger than a CI machine's memory (4 layers × 2 heads × 2^24 cells × 256 bytes of f16 K and
// V = 34 GB): the layout-only cache must not try to allocate it (only the 64 MB of cell positions).
TEST(KvCache, LayoutOnlyCacheAllocatesNoVectors) {
  const KvCacheConfig c = config(1u << 24, KvType::F16, KvType::F16, 0);
  Expected<KvCache> layout = KvCache::create(c, /*host_storage=*/false);
  ASSERT_TRUE(layout.has_value()) << layout.error();
  EXPECT_EQ(layout->bytes_per_token(), uint64_t(4) * 2 * 2 * 128);
  EXPECT_EQ(layout->cells().used(), 0u);
}

}  // namespace
}  // namespace kvant
