// backends/cpu/cpu_attention.cpp — KV write (encode through the cache's codecs) and causal GQA
// attention computed directly on the encoded blocks: the query is prepared (rotated) once per head,
// each cached vector is decoded once for all query heads of its group, and the output is rotated back
// once per head. No f32 copy of the cache is ever made.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_ops.h"
#include "kv/kv_cache.h"

namespace kvant {

void CpuOps::kv_write(KvCache& cache, int layer, const float* k, const float* v, int n_rows,
                      const int32_t* positions) {
  const KvCacheConfig& c = cache.config();
  const int d = int(c.head_dim);
  const KvCodec& kc = cache.k_codec();
  const KvCodec& vc = cache.v_codec();
  pool_.parallel_for(int64_t(n_rows) * c.n_head_kv, [&](int64_t begin, int64_t end, unsigned) {
    for (int64_t item = begin; item < end; ++item) {
      const int r = int(item / c.n_head_kv);
      const uint32_t h = uint32_t(item % c.n_head_kv);
      const uint32_t cell = KvCells::cell_for_position(positions[r]);
      const size_t off = (size_t(r) * c.n_head_kv + h) * d;
      kc.encode(k + off, cache.k_vector(layer, h, cell));
      vc.encode(v + off, cache.v_vector(layer, h, cell));
    }
  });
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
  // One work item per (query row, KV head): all `group` query heads of that KV head together.
  pool_.parallel_for(int64_t(n_rows) * c.n_head_kv, [&](int64_t begin, int64_t end, unsigned) {
    std::vector<float> q_prepared(static_cast<size_t>(group * d)), scaled(static_cast<size_t>(d)), scores;
    for (int64_t item = begin; item < end; ++item) {
      const int r = int(item / c.n_head_kv);
      const uint32_t kv_head = uint32_t(item % c.n_head_kv);
      const int n_keys = int(KvCells::cell_for_position(positions[r])) + 1;
      const float* q_row = q + (size_t(r) * n_heads + size_t(kv_head) * group) * d;  // [group][d]
      for (int g = 0; g < group; ++g) {
        for (int i = 0; i < d; ++i) scaled[i] = q_row[size_t(g) * d + i] * scale;
        kc.prepare_query(scaled.data(), q_prepared.data() + size_t(g) * d);
      }
      scores.resize(size_t(group) * n_keys);
      kc.score_group(group, q_prepared.data(), cache.k_vector(layer, kv_head, 0), cache.k_vector_bytes(), n_keys,
                     scores.data());
      for (int g = 0; g < group; ++g) {  // softmax per query head
        float* s = scores.data() + size_t(g) * n_keys;
        const float max_score = *std::max_element(s, s + n_keys);
        double sum = 0.0;
        for (int t = 0; t < n_keys; ++t) sum += s[t] = std::exp(s[t] - max_score);
        const float inv = float(1.0 / sum);
        for (int t = 0; t < n_keys; ++t) s[t] *= inv;
      }
      float* o = out + (size_t(r) * n_heads + size_t(kv_head) * group) * d;  // [group][d]
      std::fill(o, o + size_t(group) * d, 0.0f);
      vc.accumulate_group(group, scores.data(), cache.v_vector(layer, kv_head, 0), cache.v_vector_bytes(), n_keys, o);
      for (int g = 0; g < group; ++g) vc.finish_output(o + size_t(g) * d);
    }
  });
}

}  // namespace kvant
