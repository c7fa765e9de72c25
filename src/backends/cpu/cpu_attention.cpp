// backends/cpu/cpu_attention.cpp — KV write (encode through the cache's codecs) and causal GQA
// attention computed directly on the encoded blocks: the query is prepared (rotated) once per head,
// each cached vector is decoded once for all query heads of its group, and the output is rotated back
// once per head. No f32 copy of the cache is ever made. With an f16 window, the most recent tokens are
// read from the f16 ring instead of the compressed blocks.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_ops.h"
#include "backends/cpu/softmax.h"
#include "kv/kv_cache.h"

namespace kvant {

namespace {

// Contiguous runs of the ring slots holding positions [first, first + count), in position order.
struct RingRun {
  uint32_t slot, count;
};
int ring_runs(uint32_t first, uint32_t count, uint32_t ring_slots, RingRun runs[2]) {
  if (count == 0) return 0;
  const uint32_t start = first % ring_slots;
  const uint32_t head = std::min(count, ring_slots - start);
  runs[0] = {start, head};
  if (head == count) return 1;
  runs[1] = {0, count - head};
  return 2;
}

}  // namespace

void CpuOps::kv_write(KvCache& cache, int layer, const float* k, const float* v, int n_rows,
                      const int32_t* positions) {
  const KvCacheConfig& c = cache.config();
  const int d = int(c.head_dim);
  const KvCodec& kc = cache.k_codec();
  const KvCodec& vc = cache.v_codec();
  const uint32_t window = cache.window();
  pool_.parallel_for(int64_t(n_rows) * c.n_head_kv, [&](int64_t begin, int64_t end, unsigned) {
    for (int64_t item = begin; item < end; ++item) {
      const int r = int(item / c.n_head_kv);
      const uint32_t h = uint32_t(item % c.n_head_kv);
      const uint32_t cell = KvCells::cell_for_position(positions[r]);
      const size_t off = (size_t(r) * c.n_head_kv + h) * d;
      kc.encode(k + off, cache.k_vector(layer, h, cell));
      vc.encode(v + off, cache.v_vector(layer, h, cell));
      if (window > 0) {
        const uint32_t slot = cell % cache.window_ring_slots();
        cache.window_codec().encode(k + off, cache.k_window(layer, h, slot));
        cache.window_codec().encode(v + off, cache.v_window(layer, h, slot));
      }
    }
  }, std::max<int64_t>(1, kMinWorkPerThread / (64 * d)));
  for (int r = 0; r < n_rows; ++r) cache.cells().occupy(KvCells::cell_for_position(positions[r]), positions[r]);
}

void CpuOps::attention(const KvCache& cache, int layer, const float* q, int n_rows, int n_heads,
                       const int32_t* positions, float* out) {
  const KvCacheConfig& c = cache.config();
  const int d = int(c.head_dim);
  const int group = n_heads / int(c.n_head_kv);
  const float scale = 1.0f / std::sqrt(float(d));
  const KvCodec& kc = cache.k_codec();
  const KvCodec& vc = cache.v_codec();
  const KvCodec& wc = cache.window_codec();
  const uint32_t window = cache.window();
  // One work item per (query row, KV head): all `group` query heads of that KV head together.
  pool_.parallel_for(int64_t(n_rows) * c.n_head_kv, [&](int64_t begin, int64_t end, unsigned) {
    const size_t gd = size_t(group) * d;
    // old_scores: [group][n_old] for the compressed keys; win_scores: [group][n_recent] for the f16 window
    // (position order). Softmax normalises the two together, so the large part is never copied.
    std::vector<float> q_scaled(gd), q_prepared(gd), old_scores, win_scores, part, window_acc(gd);
    for (int64_t item = begin; item < end; ++item) {
      const int r = int(item / c.n_head_kv);
      const uint32_t kv_head = uint32_t(item % c.n_head_kv);
      const uint32_t n_keys = KvCells::cell_for_position(positions[r]) + 1;
      // Keys [0, n_old) come from the compressed blocks, [n_old, n_keys) from the f16 window.
      const uint32_t n_recent = window > 0 ? std::min(window, n_keys) : 0;
      const uint32_t n_old = n_keys - n_recent;
      RingRun runs[2];
      const int n_runs = window > 0 ? ring_runs(n_old, n_recent, cache.window_ring_slots(), runs) : 0;

      const float* q_row = q + (size_t(r) * n_heads + size_t(kv_head) * group) * d;  // [group][d]
      for (size_t i = 0; i < gd; ++i) q_scaled[i] = q_row[i] * scale;
      for (int g = 0; g < group; ++g) kc.prepare_query(q_scaled.data() + size_t(g) * d, q_prepared.data() + size_t(g) * d);

      old_scores.resize(size_t(group) * n_old);
      win_scores.resize(size_t(group) * n_recent);
      if (n_old > 0) {
        kc.score_group(group, q_prepared.data(), cache.k_vector(layer, kv_head, 0), cache.k_vector_bytes(), int(n_old),
                       old_scores.data());
      }
      // The window's ring runs (at most two) are scored into `part` and placed at their offset.
      for (int i = 0, offset = 0; i < n_runs; offset += int(runs[i].count), ++i) {
        const uint32_t n = runs[i].count;
        part.resize(size_t(group) * n);
        wc.score_group(group, q_scaled.data(), cache.k_window(layer, kv_head, runs[i].slot), cache.window_vector_bytes(),
                       int(n), part.data());
        for (int g = 0; g < group; ++g) {
          std::copy_n(part.data() + size_t(g) * n, n, win_scores.data() + size_t(g) * n_recent + offset);
        }
      }
      for (int g = 0; g < group; ++g) {
        softmax_parts(old_scores.data() + size_t(g) * n_old, n_old, win_scores.data() + size_t(g) * n_recent, n_recent);
      }

      float* o = out + (size_t(r) * n_heads + size_t(kv_head) * group) * d;  // [group][d]
      std::fill(o, o + gd, 0.0f);
      if (n_old > 0) {
        vc.accumulate_group(group, old_scores.data(), cache.v_vector(layer, kv_head, 0), cache.v_vector_bytes(),
                            int(n_old), o);
      }
      for (int g = 0; g < group; ++g) vc.finish_output(o + size_t(g) * d);
      if (n_runs > 0) {
        std::fill(window_acc.begin(), window_acc.end(), 0.0f);
        for (int i = 0, offset = 0; i < n_runs; offset += int(runs[i].count), ++i) {
          const uint32_t n = runs[i].count;
          part.resize(size_t(group) * n);
          for (int g = 0; g < group; ++g) {
            std::copy_n(win_scores.data() + size_t(g) * n_recent + offset, n, part.data() + size_t(g) * n);
          }
          wc.accumulate_group(group, part.data(), cache.v_window(layer, kv_head, runs[i].slot),
                              cache.window_vector_bytes(), int(n), window_acc.data());
        }
        for (size_t i = 0; i < gd; ++i) o[i] += window_acc[i];
      }
    }
  }, std::max<int64_t>(1, kMinWorkPerThread / (int64_t(positions[n_rows - 1] + 1) * d * group * 2)));
}

}  // namespace kvant
