// tests/cuda/test_cuda_matvec.cu — launch_matvec against f64 references over the dequantised weights, for
// every weight type × row count × epilogue × fused norm × width, plus decode-shape timings (µs, GB/s).
// The int8 (dp4a) path is also checked tightly against a reference that rounds x as the kernel does.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels.h"
#include "cuda_test.h"
#include "quant/quant.h"

using namespace kvant;
using cuda::MatvecArgs;
using cuda::MatvecEpilogue;

namespace {

struct Weight {
  GgmlType type{};
  int n_in = 0, n_out = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // [n_out][n_in]
  uint8_t* dev = nullptr;
  Weight() = default;
  Weight(const Weight&) = delete;
  Weight& operator=(const Weight&) = delete;
  ~Weight() { cudaFree(dev); }
  cuda::DeviceMatrix view() const { return {dev, type, n_in, n_out, row_bytes}; }
};

void make_weight(Weight& w, GgmlType type, int n_in, int n_out, uint64_t seed) {
  test::QuantisedRows q = test::quantised_random_rows(type, n_in, n_out, seed);
  w.type = type;
  w.n_in = n_in;
  w.n_out = n_out;
  w.row_bytes = q.row_bytes;
  w.bytes = std::move(q.bytes);
  w.deq = std::move(q.deq);
  KVANT_CUDA_CHECK(cudaMalloc(&w.dev, w.bytes.size()));
  KVANT_CUDA_CHECK(cudaMemcpy(w.dev, w.bytes.data(), w.bytes.size(), cudaMemcpyHostToDevice));
}

// Whether launch_matvec takes the int8 path (its rule: quantised type, 16-byte aligned rows).
bool int8_path(GgmlType type, size_t row_bytes) {
  const bool q = type == GgmlType::Q8_0 || type == GgmlType::Q4_0 || type == GgmlType::Q4_1 ||
                 type == GgmlType::Q4_K || type == GgmlType::Q5_K || type == GgmlType::Q6_K;
  return q && row_bytes % 16 == 0;
}

// x rounded as the int8 path does: groups of 32, scale amax/127, round to nearest even.
std::vector<float> round_like_int8(const std::vector<float>& x) {
  std::vector<float> o(x.size());
  for (size_t g = 0; g < x.size(); g += 32) {
    float amax = 0;
    for (size_t i = g; i < g + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    for (size_t i = g; i < g + 32; ++i) o[i] = d * std::nearbyint(x[i] * id);
  }
  return o;
}

// y[r][j] = W[j] · x[r] in double.                                               y: [n_rows][n_out]
std::vector<double> ref_dot(const Weight& w, const std::vector<float>& x, int n_rows) {
  std::vector<double> y(size_t(n_rows) * w.n_out);
  for (int r = 0; r < n_rows; ++r)
    for (int j = 0; j < w.n_out; ++j) {
      double s = 0;
      const float* wr = w.deq.data() + size_t(j) * w.n_in;
      const float* xr = x.data() + size_t(r) * w.n_in;
      for (int i = 0; i < w.n_in; ++i) s += double(wr[i]) * xr[i];
      y[size_t(r) * w.n_out + j] = s;
    }
  return y;
}

struct DevF {  // device floats
  float* p = nullptr;
  size_t n = 0;
  explicit DevF(size_t n_) : n(n_) { KVANT_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(float))); }
  DevF(const DevF&) = delete;
  DevF& operator=(const DevF&) = delete;
  ~DevF() { cudaFree(p); }
  void poison() { KVANT_CUDA_CHECK(cudaMemset(p, 0xFF, n * sizeof(float))); }
  void put(const float* v, size_t count) {
    KVANT_CUDA_CHECK(cudaMemcpy(p, v, count * sizeof(float), cudaMemcpyHostToDevice));
  }
  std::vector<float> get(size_t count) const {
    std::vector<float> v(count);
    KVANT_CUDA_CHECK(cudaDeviceSynchronize());
    KVANT_CUDA_CHECK(cudaMemcpy(v.data(), p, count * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  }
};

double rel_err(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

int g_checks = 0;
double g_worst_int8 = 0, g_worst_int8_rounded = 0;

enum class Case { Store1, Store3, AddInto, SwiGlu };
const char* case_name(Case c) {
  switch (c) {
    case Case::Store1: return "store";
    case Case::Store3: return "store x3";
    case Case::AddInto: return "add-into";
    case Case::SwiGlu: return "swiglu";
  }
  return "?";
}

// many_rows: thousands of output rows, so that int8 blocks hold many rows each (with
// KVANT_CUDA_MATVEC_SPLIT=1 more than their shared per-tile sums do: rows finish in several chunks).
void test_type_width(GgmlType type, int n_in, bool many_rows = false) {
  const std::string tname(ggml_type_name(type));
  constexpr int kMaxRows = 15;
  const float eps = 1e-5f;
  // A and B (72 rows) make a SwiGLU pair; A, C (40), D (24) a 3-weight launch.
  Weight w[4];
  const int n_outs[4] = {many_rows ? 3000 : 72, many_rows ? 3000 : 72, many_rows ? 700 : 40, many_rows ? 300 : 24};
  for (int k = 0; k < 4; ++k) make_weight(w[k], type, n_in, n_outs[k], 1000 + 10 * n_in + k);
  const bool int8 = int8_path(type, w[0].row_bytes);
  const std::vector<float> x = test::random_normal(size_t(kMaxRows) * n_in, 77 + n_in);
  std::vector<float> g = test::random_normal(size_t(n_in), 78, 0.2f);
  for (float& v : g) v += 1.0f;
  const std::vector<float> resid = test::random_normal(size_t(kMaxRows) * n_outs[0], 79);
  DevF dx(x.size()), dg(g.size()),
      dy[3] = {DevF(kMaxRows * n_outs[0]), DevF(kMaxRows * n_outs[2]), DevF(kMaxRows * n_outs[3])};
  dx.put(x.data(), x.size());
  dg.put(g.data(), g.size());

  for (bool norm : {false, true}) {
    // Kernel input: x, or x * inv_rms * g (as the int8 path folds it: x * (inv_rms * g)).
    std::vector<float> xin = x;
    if (norm) {
      for (int r = 0; r < kMaxRows; ++r) {
        double s = 0;
        for (int i = 0; i < n_in; ++i) s += double(x[size_t(r) * n_in + i]) * x[size_t(r) * n_in + i];
        const float sc = 1.0f / std::sqrt(float(s / n_in) + eps);
        for (int i = 0; i < n_in; ++i) xin[size_t(r) * n_in + i] = x[size_t(r) * n_in + i] * (sc * g[i]);
      }
    }
    std::vector<double> exact[4], rounded[4];
    const std::vector<float> xr = int8 ? round_like_int8(xin) : std::vector<float>();
    for (int k = 0; k < 4; ++k) {
      exact[k] = ref_dot(w[k], xin, kMaxRows);
      if (int8) rounded[k] = ref_dot(w[k], xr, kMaxRows);
    }
    for (int n_rows : many_rows ? std::vector<int>{1, 15} : std::vector<int>{1, 2, 3, 8, 15}) {
      // One row also with uneven block shares: the last 7 blocks take 20 % of a share (MatvecArgs::late_pct).
      for (int late : n_rows == 1 ? std::vector<int>{0, 7} : std::vector<int>{0})
      for (Case c : {Case::Store1, Case::Store3, Case::AddInto, Case::SwiGlu}) {
        MatvecArgs a;
        a.late_blocks = late;
        a.late_pct = 20;
        a.x = dx.p;
        a.n_rows = n_rows;
        a.norm_w = norm ? dg.p : nullptr;
        a.eps = eps;
        a.w[0] = w[0].view();
        a.y[0] = dy[0].p;
        int widx[3] = {0, -1, -1};
        if (c == Case::Store3) {
          a.n_w = 3;
          a.w[1] = w[2].view(), a.w[2] = w[3].view();
          a.y[1] = dy[1].p, a.y[2] = dy[2].p;
          widx[1] = 2, widx[2] = 3;
        } else if (c == Case::SwiGlu) {
          a.n_w = 2;
          a.w[1] = w[1].view();
          a.epilogue = MatvecEpilogue::SwiGlu;
        } else if (c == Case::AddInto) {
          a.epilogue = MatvecEpilogue::AddInto;
        }
        for (auto& d : dy) d.poison();
        if (c == Case::AddInto) dy[0].put(resid.data(), size_t(n_rows) * n_outs[0]);
        cuda::launch_matvec(a, nullptr);
        KVANT_CUDA_CHECK(cudaDeviceSynchronize());
        for (int o = 0; o < a.n_w && (c != Case::SwiGlu || o == 0); ++o) {
          const int k = widx[o], n_out = w[k].n_out;
          const size_t count = size_t(n_rows) * n_out;
          const std::vector<float> got = dy[o].get(count);
          // Expected outputs from a reference dot (exact or int8-rounded x).
          auto expect = [&](const std::vector<double>* dots) {
            std::vector<double> e(dots[k].begin(), dots[k].begin() + long(count));
            if (c == Case::AddInto)
              for (size_t i = 0; i < count; ++i) e[i] += resid[i];
            if (c == Case::SwiGlu)
              for (size_t i = 0; i < count; ++i) e[i] = e[i] / (1.0 + std::exp(-e[i])) * dots[1][i];
            return e;
          };
          const double err = rel_err(got, expect(exact));
          // int8 activations: per-element rounding ~amax/254 (relative ~0.5% of the group's rms for
          // normal data) averages over the row: ~5e-3 relative; SwiGLU compounds two such errors.
          const double tol = int8 ? (c == Case::SwiGlu ? 2e-2 : 1e-2) : (c == Case::SwiGlu ? 1e-4 : 2e-5);
          ++g_checks;
          CHECK(err < tol, "%s n_in=%d rows=%d late=%d %s norm=%d out %d: rel err %.3g (tol %.1g, %s path)",
                tname.c_str(), n_in, n_rows, late, case_name(c), int(norm), o, err, tol, int8 ? "int8" : "float");
          if (int8) {
            g_worst_int8 = std::max(g_worst_int8, err);
            // Against x rounded as the kernel rounds it, only float summation differs.
            const double err_r = rel_err(got, expect(rounded));
            g_worst_int8_rounded = std::max(g_worst_int8_rounded, err_r);
            ++g_checks;
            CHECK(err_r < 1e-4, "%s n_in=%d rows=%d late=%d %s norm=%d out %d: rel err vs int8-rounded x %.3g",
                  tname.c_str(), n_in, n_rows, late, case_name(c), int(norm), o, err_r);
          }
        }
      }
    }
  }
}

// The pair launch (launch_matvec_pair): Q/K of type t0 (two weights) and V of Q6_K on one normed row, each
// against the references of test_type_width.
void test_pair(GgmlType t0, int n_in) {
  const std::string tname(ggml_type_name(t0));
  Weight w[3];
  const int n_outs[3] = {640, 128, 128};
  for (int k = 0; k < 3; ++k) make_weight(w[k], k < 2 ? t0 : GgmlType::Q6_K, n_in, n_outs[k], 2000 + k);
  const float eps = 1e-5f;
  const std::vector<float> x = test::random_normal(size_t(n_in), 81);
  std::vector<float> g = test::random_normal(size_t(n_in), 82, 0.2f);
  for (float& v : g) v += 1.0f;
  double s = 0;
  for (float v : x) s += double(v) * v;
  const float sc = 1.0f / std::sqrt(float(s / n_in) + eps);
  std::vector<float> xin(x.size());
  for (int i = 0; i < n_in; ++i) xin[size_t(i)] = x[size_t(i)] * (sc * g[size_t(i)]);
  const std::vector<float> xr = round_like_int8(xin);
  DevF dx(x.size()), dg(g.size()), dy[3] = {DevF(size_t(n_outs[0])), DevF(size_t(n_outs[1])), DevF(size_t(n_outs[2]))};
  dx.put(x.data(), x.size());
  dg.put(g.data(), g.size());
  MatvecArgs a0, a1;
  for (MatvecArgs* a : {&a0, &a1}) a->x = dx.p, a->norm_w = dg.p, a->eps = eps;
  a0.n_w = 2;
  a0.w[0] = w[0].view(), a0.w[1] = w[1].view();
  a0.y[0] = dy[0].p, a0.y[1] = dy[1].p;
  a1.w[0] = w[2].view();
  a1.y[0] = dy[2].p;
  for (auto& d : dy) d.poison();
  ++g_checks;
  CHECK(cuda::launch_matvec_pair(a0, a1, nullptr), "%s + q6_K pair n_in=%d: not launched as a pair", tname.c_str(), n_in);
  KVANT_CUDA_CHECK(cudaDeviceSynchronize());
  for (int k = 0; k < 3; ++k) {
    const std::vector<float> got = dy[k].get(size_t(n_outs[k]));
    const double err = rel_err(got, ref_dot(w[k], xin, 1)), err_r = rel_err(got, ref_dot(w[k], xr, 1));
    g_checks += 2;
    CHECK(err < 1e-2, "%s + q6_K pair n_in=%d out %d: rel err %.3g", tname.c_str(), n_in, k, err);
    CHECK(err_r < 1e-4, "%s + q6_K pair n_in=%d out %d: rel err vs int8-rounded x %.3g", tname.c_str(), n_in, k, err_r);
  }
}

// launch_matvec_host_rows: one activation row written straight into mapped page-locked host memory by row runs
// per warp (8 rows a store) gives the same floats as the device-output launch (each row is still one warp's
// sum over its tiles in order), with or without uneven late shares; rows off the int8 path are declined.
void test_host_rows(GgmlType type, int n_in, int n_out) {
  const std::string tname(ggml_type_name(type));
  Weight w;
  make_weight(w, type, n_in, n_out, 4242 + n_in + n_out);
  const std::vector<float> x = test::random_normal(size_t(n_in), 4243);
  DevF dx(x.size()), dy(static_cast<size_t>(n_out));
  dx.put(x.data(), x.size());
  float* host = nullptr;
  KVANT_CUDA_CHECK(cudaMallocHost(&host, sizeof(float) * (n_out + 2)));
  void* mapped = nullptr;
  KVANT_CUDA_CHECK(cudaHostGetDevicePointer(&mapped, host, 0));
  for (int late : {0, 7}) {
    MatvecArgs a;
    a.x = dx.p;
    a.w[0] = w.view();
    a.late_blocks = late;
    a.late_pct = 20;
    dy.poison();
    a.y[0] = dy.p;
    cuda::launch_matvec(a, nullptr);
    // Guard floats on both sides of the rows catch a store outside them.
    for (int i = 0; i < n_out + 2; ++i) host[i] = -12345.0f;
    a.y[0] = static_cast<float*>(mapped) + 1;
    a.host_rows = true;
    const bool launched = cuda::launch_matvec_host_rows(a, nullptr);
    KVANT_CUDA_CHECK(cudaDeviceSynchronize());
    ++g_checks;
    if (!int8_path(type, w.row_bytes)) {  // e.g. Q6_K rows of 256 (210 bytes): the float kernel's weight
      CHECK(!launched, "%s host rows n_in=%d: accepted rows off the int8 path", tname.c_str(), n_in);
      break;
    }
    CHECK(launched, "%s host rows n_in=%d n_out=%d: launch_matvec_host_rows declined an int8 weight",
          tname.c_str(), n_in, n_out);
    const std::vector<float> want = dy.get(size_t(n_out));
    int differ = 0;
    for (int i = 0; i < n_out; ++i) differ += std::memcmp(&want[size_t(i)], &host[i + 1], sizeof(float)) != 0;
    ++g_checks;
    CHECK(differ == 0 && host[0] == -12345.0f && host[n_out + 1] == -12345.0f,
          "%s host rows n_in=%d n_out=%d late=%d: %d rows differ from the device-output launch, guards %g %g",
          tname.c_str(), n_in, n_out, late, differ, host[0], host[n_out + 1]);
  }
  KVANT_CUDA_CHECK(cudaFreeHost(host));
}

// One-row decode timing: 50 launches after warm-up, rotating over copies totalling > 4x L2.
// KVANT_MATVEC_BENCH=<type>:<n_in>:<n_out> (e.g. q6_K:14336:4096) runs only that shape's timing, no checks
// (for profilers); KVANT_MATVEC_BENCH=all every timing, no checks.
const char* g_bench_only = nullptr;
void bench(GgmlType type, int n_in, int n_out) {
  if (g_bench_only != nullptr && std::string(g_bench_only) != "all" &&
      std::string(g_bench_only) != std::string(ggml_type_name(type)) + ":" + std::to_string(n_in) + ":" +
                                       std::to_string(n_out)) {
    return;
  }
  const QuantTraits* t = quant_traits(type);
  const size_t row_bytes = size_t(n_in / t->block_elems) * t->block_bytes, bytes = row_bytes * n_out;
  std::vector<uint8_t> host(bytes);
  const std::vector<float> src = test::random_normal(size_t(n_in) * 256, 5, 0.05f);
  for (int r = 0; r < n_out; ++r) t->quantize_row(src.data() + size_t(r % 256) * n_in, host.data() + r * row_bytes, n_in);
  const int copies = int(std::max<size_t>(4, (200u << 20) / bytes + 1));
  std::vector<uint8_t*> dev(static_cast<size_t>(copies));
  for (auto& p : dev) {
    KVANT_CUDA_CHECK(cudaMalloc(&p, bytes));
    KVANT_CUDA_CHECK(cudaMemcpy(p, host.data(), bytes, cudaMemcpyHostToDevice));
  }
  const std::vector<float> x = test::random_normal(size_t(n_in), 6);
  DevF dx(x.size()), dy(static_cast<size_t>(n_out));
  dx.put(x.data(), x.size());
  MatvecArgs a;
  a.x = dx.p;
  a.y[0] = dy.p;
  a.w[0] = {nullptr, type, n_in, n_out, row_bytes};
  for (int i = 0; i < 2 * copies; ++i) {
    a.w[0].data = dev[size_t(i % copies)];
    cuda::launch_matvec(a, nullptr);
  }
  cudaEvent_t e0, e1;
  KVANT_CUDA_CHECK(cudaEventCreate(&e0));
  KVANT_CUDA_CHECK(cudaEventCreate(&e1));
  const int reps = 50;
  KVANT_CUDA_CHECK(cudaEventRecord(e0, nullptr));
  for (int i = 0; i < reps; ++i) {
    a.w[0].data = dev[size_t(i % copies)];
    cuda::launch_matvec(a, nullptr);
  }
  KVANT_CUDA_CHECK(cudaEventRecord(e1, nullptr));
  KVANT_CUDA_CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  KVANT_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
  const double us = 1e3 * ms / reps;
  std::printf("matvec time %-5s n_in %5d n_out %6d rows 1: %8.2f us  %7.0f GB/s\n",
              std::string(ggml_type_name(type)).c_str(), n_in, n_out, us, double(bytes) / us / 1e3);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  for (auto p : dev) cudaFree(p);
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);
  test::require_device();
  g_bench_only = std::getenv("KVANT_MATVEC_BENCH");
  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
                            GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
  for (GgmlType type : g_bench_only ? std::vector<GgmlType>{} : std::vector<GgmlType>(std::begin(types), std::end(types))) {
    const bool k_quant = quant_traits(type)->block_elems == 256;
    for (int n_in : {96, 256, 2048, 14336}) {
      if (n_in == 96 && k_quant) continue;  // 96: rows not 16-byte aligned (float fallback)
      test_type_width(type, n_in);
    }
    if (int8_path(type, 16)) test_type_width(type, 6144, true);
    std::printf("%s: checked\n", std::string(ggml_type_name(type)).c_str());
  }
  for (GgmlType t0 : {GgmlType::Q4_K, GgmlType::Q5_K}) {
    if (g_bench_only) break;
    test_pair(t0, 2048);
    test_pair(t0, 4096);
  }
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q5_K,
                        GgmlType::Q6_K}) {
    if (g_bench_only) break;
    const bool k_quant = quant_traits(type)->block_elems == 256;
    test_host_rows(type, k_quant ? 4096 : 2048, 32003);  // odd row count: uneven runs, partial last group
    test_host_rows(type, 256, 100);                       // fewer rows than a block's warps
  }
  if (!g_bench_only) {  // weights off the int8 path decline (they would write host memory one float per row)
    Weight w;
    make_weight(w, GgmlType::F16, 256, 64, 4244);
    DevF dx(256), dy(64);
    MatvecArgs a;
    a.x = dx.p;
    a.y[0] = dy.p;
    a.w[0] = w.view();
    a.host_rows = true;
    ++g_checks;
    CHECK(!cuda::launch_matvec_host_rows(a, nullptr), "launch_matvec_host_rows accepted an f16 weight");
  }
  std::printf("int8 path: worst rel err vs exact %.3g, vs int8-rounded x %.3g\n", g_worst_int8, g_worst_int8_rounded);
  bench(GgmlType::Q8_0, 2048, 8192);
  bench(GgmlType::Q8_0, 4096, 14336);
  bench(GgmlType::Q4_K, 2048, 8192);
  bench(GgmlType::Q4_K, 4096, 14336);
  bench(GgmlType::Q4_K, 14336, 4096);  // 8B down projection
  bench(GgmlType::Q6_K, 14336, 4096);  // 8B down projection (Q4_K_M's Q6_K layers)
  bench(GgmlType::Q6_K, 4096, 1024);   // 8B V projection
  bench(GgmlType::Q6_K, 2048, 128256);
  bench(GgmlType::Q6_K, 4096, 128256);  // 8B output
  bench(GgmlType::Q8_0, 2048, 128256);
  std::printf("%d checks, %d failures\n", g_checks, test::failures());
  return test::finish("test_cuda_matvec");
}
