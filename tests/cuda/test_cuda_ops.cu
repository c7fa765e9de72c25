// tests/cuda/test_cuda_ops.cu — every CUDA op against a CPU reference on random data: matvec for each
// weight format (exact f64 reference over the dequantised weights), the fused norm/SwiGLU/residual
// epilogues, a K-quant mix's Q/K/V in one launch, RoPE, embed, KV encode (bytes against the CPU codecs)
// and attention for every K/V pair, with and without the f16 window, single and multi-row, one split or
// many (5000 keys, eager and as a replayed graph), decode's RoPE + KV write fused into attention, plus
// timings of matvecs and of a 32K-key decode attention. Outputs are NaN-poisoned.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <tuple>

#include "backends/cpu/cpu_ops.h"
#include "backends/cuda/cuda_ops.h"
#include "cuda_test.h"
#include "kv/kv_cache.h"
#include "quant/quant.h"

using namespace kvant;
using kvant::test::rel_error;

namespace {

struct Dev {  // device float buffer, NaN-poisoned
  float* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t n_) : n(n_) {
    KVANT_CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
    poison();
  }
  Dev(const std::vector<float>& v) : Dev(v.size()) { upload(v); }
  ~Dev() { cudaFree(p); }
  void poison() { KVANT_CUDA_CHECK(cudaMemset(p, 0xFF, n * sizeof(float))); }
  void upload(const std::vector<float>& v) { KVANT_CUDA_CHECK(cudaMemcpy(p, v.data(), n * sizeof(float), cudaMemcpyHostToDevice)); }
  std::vector<float> get() const {
    std::vector<float> v(n);
    KVANT_CUDA_CHECK(cudaDeviceSynchronize());
    KVANT_CUDA_CHECK(cudaMemcpy(v.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  }
};

struct HostWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // dequantised [n_out][n_in]
  WeightView view;
};

// CudaOps caches device weights by host address (a model's weights stay mapped for the session's life), so
// every host weight and norm vector a test hands it lives to the end of the run: a freed address reused by
// a later test's weight would find the earlier weight's device copy.
const HostWeight& make_weight(GgmlType type, int n_in, int n_out, uint64_t seed) {
  static std::deque<HostWeight> kept;
  test::QuantisedRows q = test::quantised_random_rows(type, n_in, n_out, seed);
  HostWeight& w = kept.emplace_back();
  w.bytes = std::move(q.bytes);
  w.deq = std::move(q.deq);
  w.view = {w.bytes.data(), type, n_in, n_out, q.row_bytes};
  return w;
}
// A norm weight vector (random_normal(n, seed, scale) + shift), kept alive like make_weight's.
const std::vector<float>& make_norm(int n, uint64_t seed, float scale, float shift) {
  static std::deque<std::vector<float>> kept;
  std::vector<float>& g = kept.emplace_back(test::random_normal(size_t(n), seed, scale));
  for (float& v : g) v += shift;
  return g;
}

std::vector<float> ref_matmul(const HostWeight& w, const std::vector<float>& x, int n_rows) {
  const int n_in = int(w.view.n_in), n_out = int(w.view.n_out);
  std::vector<float> y(size_t(n_rows) * n_out);
  for (int r = 0; r < n_rows; ++r)
    for (int j = 0; j < n_out; ++j) {
      double s = 0;
      for (int i = 0; i < n_in; ++i) s += double(w.deq[size_t(j) * n_in + i]) * x[size_t(r) * n_in + i];
      y[size_t(r) * n_out + j] = float(s);
    }
  return y;
}

std::vector<float> ref_rmsnorm(const std::vector<float>& x, const std::vector<float>& g, int n_rows, int dim, float eps) {
  std::vector<float> o(x.size());
  for (int r = 0; r < n_rows; ++r) {
    double s = 0;
    for (int i = 0; i < dim; ++i) s += double(x[size_t(r) * dim + i]) * x[size_t(r) * dim + i];
    const float sc = 1.0f / std::sqrt(float(s / dim) + eps);
    for (int i = 0; i < dim; ++i) o[size_t(r) * dim + i] = x[size_t(r) * dim + i] * sc * g[i];
  }
  return o;
}

// Runs the ops `body` records as one forward pass (so the planner fuses them).
template <typename Fn>
void as_forward(cuda::CudaOps& ops, int n, const int32_t* positions, Fn body) {
  float dummy = 0;
  std::vector<int32_t> tokens(size_t(n), 0);
  ops.begin_forward({tokens.data(), positions, n, &dummy, 1});
  body();
  ops.end_forward();
}

void test_matvec(cuda::CudaOps& ops) {
  const GgmlType types[] = {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
                            GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q5_0};
  for (GgmlType type : types) {
    for (int n_in : {512, 2048}) {
      const HostWeight& w = make_weight(type, n_in, 72, 11 + n_in);
      for (int n_rows : {1, 3, 9}) {
        const std::vector<float> x = test::random_normal(size_t(n_rows) * n_in, 5 + n_rows);
        Dev dx(x), dy(size_t(n_rows) * 72);
        ops.matmul(w.view, dx.p, n_rows, dy.p);
        const double err = rel_error(dy.get(), ref_matmul(w, x, n_rows));
        // Quantised types with 16-byte aligned rows run the int8 (dp4a) path: x rounded to int8 per 32
        // elements (~5e-3 relative, see test_cuda_matvec); float formats stay exact.
        const bool int8 = type != GgmlType::F32 && type != GgmlType::F16 && type != GgmlType::BF16 &&
                          type != GgmlType::Q5_0 && w.view.row_bytes % 16 == 0;
        const double tol = int8 ? 1e-2 : 2e-5;
        CHECK(err < tol, "matvec %s n_in=%d rows=%d rel err %.3g", std::string(ggml_type_name(type)).c_str(), n_in,
              n_rows, err);
      }
    }
  }
  std::printf("matvec: %zu weight types x 2 widths x 3 row counts checked\n", std::size(types));
}

void test_fusions(cuda::CudaOps& ops) {
  const int E = 512, F = 768, n = 3;
  const float eps = 1e-5f;
  std::vector<int32_t> pos = {0, 1, 2};
  const HostWeight &wq = make_weight(GgmlType::Q8_0, E, 256, 1), &wk = make_weight(GgmlType::Q8_0, E, 128, 2);
  const HostWeight &gate = make_weight(GgmlType::Q4_K, E, F, 3), &up = make_weight(GgmlType::Q4_K, E, F, 4);
  const HostWeight& down = make_weight(GgmlType::Q6_K, F, E, 5);
  const std::vector<float>& g = make_norm(E, 6, 0.2f, 1.0f);
  const WeightView gw{g.data(), GgmlType::F32, E, 1, size_t(E) * 4};
  const std::vector<float> x = test::random_normal(size_t(n) * E, 7);
  Dev dx(x), dxn(size_t(n) * E), dq(size_t(n) * 256), dk(size_t(n) * 128), dg(size_t(n) * F), du(size_t(n) * F),
      dp(size_t(n) * E);
  as_forward(ops, n, pos.data(), [&] {
    ops.rmsnorm(dx.p, gw, n, E, eps, dxn.p);
    ops.matmul(wq.view, dxn.p, n, dq.p);
    ops.matmul(wk.view, dxn.p, n, dk.p);
    ops.rmsnorm(dx.p, gw, n, E, eps, dxn.p);
    ops.matmul(gate.view, dxn.p, n, dg.p);
    ops.matmul(up.view, dxn.p, n, du.p);
    ops.swiglu(dg.p, du.p, int64_t(n) * F, dg.p);
    ops.matmul(down.view, dg.p, n, dp.p);
    ops.add(dx.p, dp.p, int64_t(n) * E);
  });
  const std::vector<float> xn = ref_rmsnorm(x, g, n, E, eps);
  // Q8_0/Q4_K run the int8 activation path (~5e-3 relative error, SwiGLU compounds two; see test_cuda_matvec).
  CHECK(rel_error(dq.get(), ref_matmul(wq, xn, n)) < 1e-2, "fused norm+q %.3g", rel_error(dq.get(), ref_matmul(wq, xn, n)));
  CHECK(rel_error(dk.get(), ref_matmul(wk, xn, n)) < 1e-2, "fused norm+k");
  std::vector<float> gv = ref_matmul(gate, xn, n), uv = ref_matmul(up, xn, n);
  for (size_t i = 0; i < gv.size(); ++i) gv[i] = gv[i] / (1.0f + std::exp(-gv[i])) * uv[i];
  CHECK(rel_error(dg.get(), gv) < 2e-2, "fused swiglu %.3g", rel_error(dg.get(), gv));
  std::vector<float> xr = ref_matmul(down, gv, n);
  for (size_t i = 0; i < xr.size(); ++i) xr[i] += x[i];
  CHECK(rel_error(dx.get(), xr) < 1e-2, "fused down+residual %.3g", rel_error(dx.get(), xr));
  std::printf("fusions: norm+QK, gate/up+SwiGLU, down+residual checked\n");
}

// Decode's Q/K/V of a K-quant mix (Q4_K or Q5_K Q and K, Q6_K V, as in Q4_K_M/Q5_K_M files): with pair
// launches on, as many graph nodes as the same projections in one type; each output against the f64 reference.
void test_mixed_qkv(cuda::CudaOps& ops) {
  const int E = 2048, n_q = 2048, n_kv = 512;  // 8 super-blocks: Q6_K rows of 1680 bytes, 16-byte aligned
  const float eps = 1e-5f;
  const int32_t pos = 0;
  const std::vector<float>& g = make_norm(E, 21, 0.2f, 1.0f);
  const WeightView gw{g.data(), GgmlType::F32, E, 1, size_t(E) * 4};
  const std::vector<float> x = test::random_normal(E, 22);
  const std::vector<float> xn = ref_rmsnorm(x, g, 1, E, eps);
  int nodes_same = -1;
  for (GgmlType qk : {GgmlType::Q4_K, GgmlType::Q5_K}) {
    for (GgmlType v : {qk, GgmlType::Q6_K}) {
      const HostWeight &wq = make_weight(qk, E, n_q, 23), &wk = make_weight(qk, E, n_kv, 24),
                       &wv = make_weight(v, E, n_kv, 25);
      Dev dx(x), dxn{size_t(E)}, dq{size_t(n_q)}, dk{size_t(n_kv)}, dv{size_t(n_kv)};
      as_forward(ops, 1, &pos, [&] {
        ops.rmsnorm(dx.p, gw, 1, E, eps, dxn.p);
        ops.matmul(wq.view, dxn.p, 1, dq.p);
        ops.matmul(wk.view, dxn.p, 1, dk.p);
        ops.matmul(wv.view, dxn.p, 1, dv.p);
      });
      const std::string name = std::string(ggml_type_name(qk)) + "/" + std::string(ggml_type_name(v));
      const double eq = rel_error(dq.get(), ref_matmul(wq, xn, 1)), ek = rel_error(dk.get(), ref_matmul(wk, xn, 1)),
                   ev = rel_error(dv.get(), ref_matmul(wv, xn, 1));
      CHECK(eq < 1e-2 && ek < 1e-2 && ev < 1e-2, "norm+QKV %s rel err q %.3g k %.3g v %.3g", name.c_str(), eq, ek, ev);
      if (v == qk) {
        nodes_same = ops.kernels_per_token();
      } else {  // one launch as a pair, else a second launch for V
        const int want = nodes_same + (ops.matvec_pairs() ? 0 : 1);
        CHECK(ops.kernels_per_token() == want, "norm+QKV %s: %d graph nodes, want %d", name.c_str(),
              ops.kernels_per_token(), want);
      }
    }
  }
  std::printf("mixed Q/K/V: Q4_K and Q5_K with a Q6_K V (%s), checked\n",
              ops.matvec_pairs() ? "one pair launch" : "two launches: KVANT_CUDA_MATVEC_PAIR=0");
}

void test_elementwise(cuda::CudaOps& ops, CpuOps& cpu) {
  const int n = 4, E = 256, H = 4, D = 64;
  std::vector<float> x = test::random_normal(size_t(n) * E, 21), y = test::random_normal(size_t(n) * E, 22);
  const std::vector<float>& g = make_norm(E, 23, 1.0f, 0.0f);
  const WeightView gw{g.data(), GgmlType::F32, E, 1, size_t(E) * 4};
  Dev dx(x), dy(y), dout(size_t(n) * E);
  ops.rmsnorm(dx.p, gw, n, E, 1e-6f, dout.p);
  std::vector<float> ref(x.size());
  cpu.rmsnorm(x.data(), gw, n, E, 1e-6f, ref.data());
  CHECK(rel_error(dout.get(), ref) < 1e-6, "rmsnorm");
  ops.swiglu(dx.p, dy.p, int64_t(n) * E, dout.p);
  cpu.swiglu(x.data(), y.data(), int64_t(n) * E, ref.data());
  CHECK(rel_error(dout.get(), ref) < 1e-6, "swiglu");
  ops.add(dx.p, dy.p, int64_t(n) * E);
  ref = x;
  cpu.add(ref.data(), y.data(), int64_t(n) * E);
  CHECK(rel_error(dx.get(), ref) < 1e-7, "add");
  // RoPE, both orderings, with frequency factors, positions up to 100k.
  static const std::vector<float> factors = [] {  // static: the device copy is cached by host address
    std::vector<float> f(D / 2);
    for (int i = 0; i < D / 2; ++i) f[i] = 1.0f + 0.1f * i;
    return f;
  }();
  for (RopeOrdering ord : {RopeOrdering::Normal, RopeOrdering::NeoX}) {
    RopeConfig cfg;
    cfg.head_dim = D;
    cfg.rope_dim = D;
    cfg.freq_base = 500000.0f;
    cfg.ordering = ord;
    cfg.freq_factors = ord == RopeOrdering::Normal ? factors.data() : nullptr;
    std::vector<float> q = test::random_normal(size_t(n) * H * D, 24);
    std::vector<int32_t> pos = {0, 7, 4095, 100000};
    Dev dq(q);
    ops.rope(dq.p, n, H, pos.data(), cfg);
    cpu.rope(q.data(), n, H, pos.data(), cfg);
    CHECK(rel_error(dq.get(), q) < 1e-5, "rope ordering %d err %.3g", int(ord), rel_error(dq.get(), q));
  }
  // Embed (q8_0 table).
  const HostWeight& table = make_weight(GgmlType::Q8_0, 256, 50, 25);
  std::vector<int32_t> tok = {3, 49, 0};
  Dev de(3 * 256);
  ops.embed(table.view, tok.data(), 3, de.p);
  std::vector<float> eref(3 * 256);
  cpu.embed(table.view, tok.data(), 3, eref.data());
  CHECK(rel_error(de.get(), eref) == 0.0, "embed");
  std::printf("elementwise: rmsnorm, swiglu, add, rope x2, embed checked\n");
}

// A test cache: 2 KV heads, the given types (q8_0/q4_0 K and q4_0 V rotated), window and a batch of 64.
KvCacheConfig test_cache_config(uint32_t n_layer, int d, uint32_t n_ctx, KvType tk, KvType tv, uint32_t window) {
  KvCacheConfig c;
  c.n_layer = n_layer;
  c.n_head_kv = 2;
  c.head_dim = uint32_t(d);
  c.n_ctx = n_ctx;
  c.type_k = tk;
  c.type_v = tv;
  c.rotate_k = tk == KvType::Q8_0 || tk == KvType::Q4_0;
  c.rotate_v = tv == KvType::Q4_0;
  c.window = window;
  c.max_batch = 64;
  return c;
}

void test_kv(cuda::CudaOps& ops, CpuOps& cpu) {
  struct Pair { KvType k, v; };
  int combos = 0, byte_mismatch = 0, vectors = 0;
  for (int d : {64, 32, 128}) {
    for (KvType tk : kAllKvTypes) {
      for (KvType tv : kAllKvTypes) {
        for (uint32_t window : {0u, 32u}) {
          if (d != 64 && (window > 0 || tv != tk)) continue;  // keep the run short: full matrix at d = 64
          const KvCacheConfig c = test_cache_config(2, d, 512, tk, tv, window);
          auto host_cache = KvCache::create(c);
          auto dev_cache = KvCache::create(c);
          CHECK(bool(host_cache) && bool(dev_cache), "cache create");
          if (!host_cache || !dev_cache) continue;
          const int G = d == 32 ? 2 : 4, n_head = G * 2, n_keys = 300;
          const size_t row = size_t(c.n_head_kv) * d;
          std::vector<float> k = test::random_normal(n_keys * row, 31 + d), v = test::random_normal(n_keys * row, 32 + d);
          for (size_t i = 0; i < k.size(); i += 17) k[i] *= 6.0f;  // outliers
          std::vector<int32_t> pos(n_keys);
          for (int i = 0; i < n_keys; ++i) pos[i] = i;
          for (int start = 0; start < n_keys; start += 64) {  // batches as a prompt would write them
            const int nb = std::min(64, n_keys - start);
            cpu.kv_write(*host_cache, 1, k.data() + start * row, v.data() + start * row, nb, pos.data() + start);
            ops.kv_write(*dev_cache, 1, k.data() + start * row, v.data() + start * row, nb, pos.data() + start);
          }
          std::vector<uint8_t> got(host_cache->k_vector_bytes() + host_cache->v_vector_bytes());
          for (int cell = 0; cell < n_keys; cell += 37) {
            for (int h = 0; h < 2; ++h) {
              ops.download_vector(*dev_cache, true, 1, h, cell, got.data());
              const bool differs = std::memcmp(got.data(), host_cache->k_vector(1, h, cell), host_cache->k_vector_bytes()) != 0;
              byte_mismatch += differs;
              static int shown = 0;
              if (differs && shown++ < 8 && (shown < 3 || cell > 64)) {
                std::printf("K %s d=%d cell %d head %d: gpu", kv_type_name(tk), d, cell, h);
                for (int b = 0; b < 12; ++b) std::printf(" %02x", got[b]);
                std::printf(" | cpu");
                for (int b = 0; b < 12; ++b) std::printf(" %02x", host_cache->k_vector(1, h, cell)[b]);
                std::printf(" | x %.4f %.4f\n", k[cell * row + h * d], k[cell * row + h * d + 1]);
              }
              ops.download_vector(*dev_cache, false, 1, h, cell, got.data());
              byte_mismatch += std::memcmp(got.data(), host_cache->v_vector(1, h, cell), host_cache->v_vector_bytes()) != 0;
              vectors += 2;
            }
          }
          // Attention: a decode row at the end, and 3 prompt rows in the middle (causal).
          // Splits (eager): 1 row at 299 -> 2 compressed splits (+ window) and a combine; 3 rows up to 200 ->
          // one split, the kernel writes the output; n_rows 0 = one row at 20 (< window): window only.
          for (int n_rows : {1, 3, 0}) {
            if (n_rows == 0 && window == 0) continue;
            const bool early = n_rows == 0;
            if (early) n_rows = 1;
            std::vector<int32_t> qpos(n_rows);
            for (int r = 0; r < n_rows; ++r) qpos[r] = early ? 20 : n_rows == 1 ? n_keys - 1 : 100 + 50 * r;
            std::vector<float> q = test::random_normal(size_t(n_rows) * n_head * d, 33 + n_rows);
            std::vector<float> ref(q.size());
            cpu.attention(*host_cache, 1, q.data(), n_rows, n_head, qpos.data(), ref.data());
            Dev dq(q), dout(q.size());
            ops.attention(*dev_cache, 1, dq.p, n_rows, n_head, qpos.data(), dout.p);
            const double err = rel_error(dout.get(), ref);
            CHECK(err < 2e-3, "attention d=%d K %s V %s window %u rows %d pos %d rel err %.3g", d, kv_type_name(tk),
                  kv_type_name(tv), window, n_rows, qpos[0], err);
          }
          ++combos;
        }
      }
    }
  }
  // Encoding is the same arithmetic as the CPU codecs; turbo's double sums may differ in the last bit
  // (summation order), which can flip a rare index: allow a small fraction.
  CHECK(byte_mismatch * 50 <= vectors, "KV encode: %d of %d vectors differ from the CPU bytes", byte_mismatch, vectors);
  std::printf("kv: %d cache configs (K x V x window), encode bytes %d/%d identical, attention checked\n", combos,
              vectors - byte_mismatch, vectors);
}

// Fills layer `layer` of a cache with n_keys random K/V rows (64 per batch) through the CPU codecs.
void fill_cache_cpu(CpuOps& cpu, KvCache& cache, int layer, int n_keys, uint64_t seed) {
  const size_t row = size_t(cache.config().n_head_kv) * cache.config().head_dim;
  for (int start = 0; start < n_keys; start += 64) {
    const int nb = std::min(64, n_keys - start);
    std::vector<float> k = test::random_normal(nb * row, seed + 2 * start), v = test::random_normal(nb * row, seed + 2 * start + 1);
    for (size_t i = 0; i < k.size(); i += 17) k[i] *= 6.0f;  // outliers
    std::vector<int32_t> pos(nb);
    for (int i = 0; i < nb; ++i) pos[i] = start + i;
    cpu.kv_write(cache, layer, k.data(), v.data(), nb, pos.data());
  }
}

// One decode attention of q (on the device in dq) at position pos of layer 0, eager or recorded as a
// one-token forward (a captured graph), into dout (poisoned first); returns its relative error against
// the CPU's attention.
double decode_attention_error(cuda::CudaOps& ops, CpuOps& cpu, KvCache& cache, const std::vector<float>& q, Dev& dq,
                              Dev& dout, int n_head, int32_t pos, bool graph) {
  std::vector<float> ref(q.size());
  cpu.attention(cache, 0, q.data(), 1, n_head, &pos, ref.data());
  dout.poison();
  if (graph) {
    as_forward(ops, 1, &pos, [&] { ops.attention(cache, 0, dq.p, 1, n_head, &pos, dout.p); });
  } else {
    ops.attention(cache, 0, dq.p, 1, n_head, &pos, dout.p);
  }
  return rel_error(dout.get(), ref);
}

// Long contexts (many splits + combine) for every K/V pair at d = 64 with a group of 6 (8-head blocks),
// eager and as a captured graph replayed at a second position; d = 256 and 512 for a few pairs. The cache
// is written by the CPU codecs and uploaded as is on first device use, so this checks the attention
// kernels alone on identical bytes (the device encoder is checked by test_kv).
void test_attention_long(cuda::CudaOps& ops, CpuOps& cpu) {
  int checked = 0;
  for (int d : {64, 256, 512}) {
    for (KvType tk : kAllKvTypes) {
      for (KvType tv : kAllKvTypes) {
        if (d != 64 && !((tk == KvType::F16 && tv == KvType::F16) || (tk == KvType::TURBO_4B && tv == KvType::TURBO_4B) ||
                         (tk == KvType::Q8_0 && tv == KvType::TURBO_3B) || (tk == KvType::TURBO_5B && tv == KvType::Q4_0)))
          continue;
        const uint32_t window = (int(tk) + int(tv)) % 2 ? 128u : 0u;  // half the pairs with a window
        const int n_keys = d == 64 ? 5000 : 1000, G = d == 64 ? 6 : 4, n_head = 2 * G;
        const KvCacheConfig c = test_cache_config(1, d, uint32_t(n_keys + 8), tk, tv, window);
        auto cache = KvCache::create(c);
        CHECK(bool(cache), "cache create d=%d", d);
        if (!cache) continue;
        fill_cache_cpu(cpu, *cache, 0, n_keys, 71 + d);
        const std::vector<float> q = test::random_normal(size_t(n_head) * d, 77);
        Dev dq(q), dout(q.size());
        for (int mode = 0; mode < 3; ++mode) {  // eager at the end; graph at the end; graph replayed at 1500
          const int32_t pos = mode == 2 ? std::min(1500, n_keys - 1) : n_keys - 1;
          const double err = decode_attention_error(ops, cpu, *cache, q, dq, dout, n_head, pos, mode > 0);
          CHECK(err < 2e-3, "long attention d=%d K %s V %s window %u keys %d (%s) rel err %.3g", d, kv_type_name(tk),
                kv_type_name(tv), window, pos + 1, mode == 0 ? "eager" : "graph", err);
          ++checked;
        }
      }
    }
  }
  std::printf("attention long contexts: %d checks (5000 keys at d=64 with G=6, 1000 keys at d=256/512)\n", checked);
}

// Wide blocks (16 warps, one 32-replica pair table; CudaOps::attention_wide): turbo_kv_4b K and V at d = 64
// and 128 with a group of 4, with and without a window, past kAttnWideMinKeys keys: eager, as a graph, the
// graph replayed at a second wide position, then a graph at 1500 keys, which must be captured again with
// 4-warp blocks. Every output against the CPU; the wide launches are counted.
void test_attention_wide(cuda::CudaOps& ops, CpuOps& cpu) {
  int checked = 0, wrong_shape = 0;
  const int n_keys = cuda::kAttnWideMinKeys + 900;
  for (int d : {64, 128}) {
    for (uint32_t window : {0u, 128u}) {
      const int G = 4, n_head = 2 * G;
      const KvCacheConfig c = test_cache_config(1, d, uint32_t(n_keys + 8), KvType::TURBO_4B, KvType::TURBO_4B, window);
      auto cache = KvCache::create(c);
      CHECK(bool(cache), "cache create d=%d", d);
      if (!cache) continue;
      fill_cache_cpu(cpu, *cache, 0, n_keys, 171 + d);
      const std::vector<float> q = test::random_normal(size_t(n_head) * d, 177);
      Dev dq(q), dout(q.size());
      // Mode: eager at the end; graph at the end; the same graph replayed; a graph at 1500 keys.
      const int32_t positions[4] = {n_keys - 1, n_keys - 1, int32_t(window) + cuda::kAttnWideMinKeys + 100, 1500};
      const int wide_emits[4] = {1, 1, 0, 0};  // a replay emits nothing; 1500 keys: 4-warp blocks
      for (int mode = 0; mode < 4; ++mode) {
        const int32_t pos = positions[mode];
        const int before = ops.attention_wide_launches();
        const double err = decode_attention_error(ops, cpu, *cache, q, dq, dout, n_head, pos, mode > 0);
        CHECK(err < 2e-3, "wide attention d=%d window %u keys %d (mode %d) rel err %.3g", d, window, pos + 1, mode, err);
        const int emitted = ops.attention_wide_launches() - before;
        CHECK(emitted == wide_emits[mode], "wide attention d=%d window %u keys %d (mode %d): %d wide launches emitted, "
              "expected %d", d, window, pos + 1, mode, emitted, wide_emits[mode]);
        wrong_shape += emitted != wide_emits[mode];
        ++checked;
      }
    }
  }
  std::printf("attention wide blocks: %d checks (%d keys, d=64/128, G=4), %d with the wrong block shape\n", checked,
              n_keys, wrong_shape);
}

// Decode's fused token write (rope q, rope k, kv_write and attention as one attention launch) against the
// same four ops as separate kernels and against the CPU: every K/V pair at d = 64 with no window, a
// window (turbo halves staged and encoded on the side stream) and a window-only cache; d = 128 for a few
// pairs. Three successive tokens as captured graphs; the outputs and the token's encoded cells must be
// identical to the unfused launches, the outputs within 2e-3 of the CPU.
void test_fused_token_write(cuda::CudaOps& ops, CpuOps& cpu) {
  int checked = 0, exact = 0;
  for (int d : {64, 128}) {
    for (KvType tk : kAllKvTypes) {
      for (KvType tv : kAllKvTypes) {
        if (d != 64 && !((tk == KvType::F16 && tv == KvType::F16) || (tk == KvType::TURBO_4B && tv == KvType::TURBO_4B) ||
                         (tk == KvType::Q8_0 && tv == KvType::TURBO_3B)))
          continue;
        for (int mode = 0; mode < 3; ++mode) {  // no window, window 32, window-only (n_ctx <= window)
          const uint32_t window = mode == 0 ? 0u : 32u, n_ctx = mode == 2 ? 32u : 128u;
          const int n0 = mode == 2 ? 20 : 70, G = 4, n_kv = 2, n_head = G * n_kv, layer = 1;
          const KvCacheConfig c = test_cache_config(2, d, n_ctx, tk, tv, window);
          auto host = KvCache::create(c), fused = KvCache::create(c), split = KvCache::create(c);
          CHECK(bool(host) && bool(fused) && bool(split), "cache create");
          if (!host || !fused || !split) continue;
          fill_cache_cpu(cpu, *host, layer, n0, 91 + d);  // both device caches upload these bytes on first use
          fill_cache_cpu(cpu, *fused, layer, n0, 91 + d);
          fill_cache_cpu(cpu, *split, layer, n0, 91 + d);
          RopeConfig rc;
          rc.head_dim = d;
          rc.rope_dim = d;
          rc.freq_base = 500000.0f;
          rc.ordering = (int(tk) + int(tv)) % 2 ? RopeOrdering::NeoX : RopeOrdering::Normal;
          for (int32_t pos = n0; pos < n0 + 3; ++pos) {
            const std::vector<float> q = test::random_normal(size_t(n_head) * d, 100 + pos);
            const std::vector<float> k = test::random_normal(size_t(n_kv) * d, 200 + pos);
            const std::vector<float> v = test::random_normal(size_t(n_kv) * d, 300 + pos);
            std::vector<float> hq = q, hk = k, ref(q.size());
            cpu.rope(hq.data(), 1, n_head, &pos, rc);
            cpu.rope(hk.data(), 1, n_kv, &pos, rc);
            cpu.kv_write(*host, layer, hk.data(), v.data(), 1, &pos);
            cpu.attention(*host, layer, hq.data(), 1, n_head, &pos, ref.data());
            std::vector<float> out[2];
            for (int f = 0; f < 2; ++f) {
              KvCache& cache = f ? *fused : *split;
              Dev dq(q), dk(k), dv(v), dout(q.size());
              ops.set_token_write_fused(f == 1);
              as_forward(ops, 1, &pos, [&] {
                ops.rope(dq.p, 1, n_head, &pos, rc);
                ops.rope(dk.p, 1, n_kv, &pos, rc);
                ops.kv_write(cache, layer, dk.p, dv.p, 1, &pos);
                ops.attention(cache, layer, dq.p, 1, n_head, &pos, dout.p);
              });
              out[f] = dout.get();
            }
            ops.set_token_write_fused(true);
            const double err = rel_error(out[1], ref);
            CHECK(err < 2e-3, "fused token d=%d K %s V %s window %u ctx %u pos %d: rel err %.3g vs cpu", d,
                  kv_type_name(tk), kv_type_name(tv), window, n_ctx, pos, err);
            const bool same = std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float)) == 0;
            CHECK(same, "fused token d=%d K %s V %s window %u ctx %u pos %d: output differs from the unfused launches "
                  "(rel %.3g)", d, kv_type_name(tk), kv_type_name(tv), window, n_ctx, pos, rel_error(out[1], out[0]));
            exact += same;
            std::vector<uint8_t> a(std::max(host->k_vector_bytes(), host->v_vector_bytes())), b(a.size());
            for (int h = 0; h < n_kv; ++h) {
              for (bool is_k : {true, false}) {
                const size_t bytes = is_k ? host->k_vector_bytes() : host->v_vector_bytes();
                ops.download_vector(*fused, is_k, layer, h, pos, a.data());
                ops.download_vector(*split, is_k, layer, h, pos, b.data());
                const bool cell_same = std::memcmp(a.data(), b.data(), bytes) == 0;
                CHECK(cell_same, "fused token d=%d K %s V %s window %u: %s cell %d head %d differs from the unfused "
                      "write", d, kv_type_name(tk), kv_type_name(tv), window, is_k ? "K" : "V", pos, h);
                static int shown = 0;
                if (!cell_same && shown++ < 6) {
                  const uint8_t* cpu_cell = is_k ? host->k_vector(layer, h, pos) : host->v_vector(layer, h, pos);
                  std::printf("  bytes fused / unfused / cpu:");
                  const uint8_t* cells[3] = {a.data(), b.data(), cpu_cell};
                  for (const uint8_t* x : cells) {
                    std::printf(" |");
                    for (size_t i = 0; i < std::min<size_t>(bytes, 12); ++i) std::printf(" %02x", x[i]);
                  }
                  std::printf("\n");
                }
              }
            }
            ++checked;
          }
        }
      }
    }
  }
  std::printf("fused token write: %d decode steps (all K/V pairs x no window / window / window-only), %d outputs "
              "bit-identical to the unfused launches\n", checked, exact);
}

// One decode attention over 32K keys (KVANT_BENCH_ATTN_CTX: a comma-separated list of context sizes), 8 KV
// heads, G = 4, d = 64 and 128 (the 1B and 8B shapes): 20 attention ops in one captured graph over layers
// in turn (K/V from device memory), timed with events over 5 replays after 2 warm-ups (the two tiny copies
// of each forward are included: ~1%).
void bench_attention(cuda::CudaOps& ops) {
  std::vector<int> contexts;
  for (const char* s = std::getenv("KVANT_BENCH_ATTN_CTX"); s != nullptr && *s != '\0';) {
    char* end = nullptr;
    const long n = std::strtol(s, &end, 10);
    if (end == s || n < 512 || n % 512 != 0) {
      std::printf("KVANT_BENCH_ATTN_CTX: '%s' is not a list of multiples of 512\n", s);
      contexts.clear();
      break;
    }
    contexts.push_back(int(n));
    s = *end == ',' ? end + 1 : end;
  }
  if (contexts.empty()) contexts.push_back(32768);
  for (int n_ctx : contexts) {
    for (int d : {64, 128}) {
      for (KvType t : {KvType::F16, KvType::TURBO_4B}) {
        KvCacheConfig c;
        c.n_layer = 1;
        c.n_head_kv = 8;
        c.head_dim = d;
        c.n_ctx = 512;
        c.type_k = c.type_v = t;
        c.window = kDefaultKvWindow;
        c.max_batch = 512;
        // As many layers as make 256 MB of K/V (at most 20), attended in turn: each attention then reads its
        // keys from device memory, as in a model, not from the L2 the last replay left them in (a 32K-key
        // turbo_kv_4b layer at d = 128 is 35 MB, which the H100's 50 MB and the H200's 60 MB L2 hold).
        auto probe = KvCache::create(c);
        CHECK(bool(probe), "bench cache probe");
        if (!probe) continue;
        const double layer_bytes = double(c.n_head_kv) * n_ctx * double(probe->k_vector_bytes() + probe->v_vector_bytes());
        c.n_layer = uint32_t(std::clamp(int(std::ceil(256e6 / layer_bytes)), 1, 20));
        c.n_ctx = uint32_t(n_ctx);
        auto cache = KvCache::create(c);
        CHECK(bool(cache), "bench cache create");
        if (!cache) continue;
        const size_t row = size_t(c.n_head_kv) * c.head_dim;
        const std::vector<float> k = test::random_normal(512 * row, 5), v = test::random_normal(512 * row, 6);
        std::vector<int32_t> pos(512);
        for (int start = 0; start < int(c.n_ctx); start += 512) {
          for (int i = 0; i < 512; ++i) pos[i] = start + i;
          for (int l = 0; l < int(c.n_layer); ++l) ops.kv_write(*cache, l, k.data(), v.data(), 512, pos.data());
        }
        const int n_head = 32, reps = 20, runs = 5;
        Dev dq(test::random_normal(size_t(n_head) * d, 7)), dout(size_t(n_head) * d);
        int32_t p = int32_t(c.n_ctx) - 1;
        auto forward = [&] {
          as_forward(ops, 1, &p, [&] {
            for (int i = 0; i < reps; ++i) ops.attention(*cache, i % int(c.n_layer), dq.p, 1, n_head, &p, dout.p);
          });
        };
        forward();
        forward();
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        cudaEventRecord(e0, ops.stream());
        for (int r = 0; r < runs; ++r) forward();
        cudaEventRecord(e1, ops.stream());
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        const std::vector<float> o = dout.get();
        bool finite = true;
        for (float x : o) finite &= std::isfinite(x);
        CHECK(finite, "bench attention %s: non-finite output", kv_type_name(t));
        const double us = 1e3 * ms / (runs * reps);
        std::printf("attention bench K=V=%-12s %6d keys, 8 KV heads, G=4, d=%3d: %7.1f us per attention (graph, "
                    "%2u layers in turn), %5.0f GB/s of K/V\n", kv_type_name(t), n_ctx, d, us, c.n_layer,
                    layer_bytes / us / 1e3);
      }
    }
  }
}

// Achieved bandwidth of one-row matvecs of decode-sized matrices (events around 20 launches).
void bench_matvec(cuda::CudaOps& ops) {
  for (auto [type, n_in, n_out] : {std::tuple{GgmlType::Q8_0, 2048, 8192}, {GgmlType::Q8_0, 8192, 2048},
                                   {GgmlType::Q4_K, 4096, 14336}, {GgmlType::Q6_K, 4096, 4096}}) {
    const HostWeight& w = make_weight(type, n_in, n_out, 99);
    Dev dx(test::random_normal(size_t(n_in), 3));
    Dev dy{size_t(n_out)};
    ops.matmul(w.view, dx.p, 1, dy.p);  // upload + warm-up
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const int reps = 20;
    float dummy = 0;
    int32_t tok = 0, pos = 0;
    cudaEventRecord(e0, ops.stream());
    for (int i = 0; i < reps; ++i) {
      ops.begin_forward({&tok, &pos, 2, &dummy, 1});  // n = 2: eager, no graph
      ops.matmul(w.view, dx.p, 1, dy.p);
      ops.end_forward();
    }
    cudaEventRecord(e1, ops.stream());
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    const double us = 1e3 * ms / reps;
    std::printf("matvec bench %-5s %5d x %5d: %7.1f us/launch incl. sync, %6.0f GB/s\n",
                std::string(ggml_type_name(type)).c_str(), n_out, n_in, us, double(w.bytes.size()) / us / 1e3);
  }
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);
  test::require_device();
  cuda::CudaOps ops;
  CpuOps cpu(4);
  // KVANT_TEST_FILTER=name runs only the parts whose name contains it (e.g. "fused").
  const char* filter = std::getenv("KVANT_TEST_FILTER");
  auto part = [&](const char* name, auto&& fn) {
    if (filter == nullptr || std::strstr(name, filter) != nullptr) fn();
  };
  part("matvec", [&] { test_matvec(ops); });
  part("fusions", [&] { test_fusions(ops); });
  part("mixed qkv", [&] { test_mixed_qkv(ops); });
  part("elementwise", [&] { test_elementwise(ops, cpu); });
  part("kv", [&] { test_kv(ops, cpu); });
  part("attention_long", [&] { test_attention_long(ops, cpu); });
  part("attention_wide", [&] { test_attention_wide(ops, cpu); });
  part("fused_token_write", [&] { test_fused_token_write(ops, cpu); });
  part("bench_matvec", [&] { bench_matvec(ops); });
  part("bench_attention", [&] { bench_attention(ops); });
  return test::finish("test_cuda_ops");
}
