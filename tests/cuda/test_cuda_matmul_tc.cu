// tests/cuda/test_cuda_matmul_tc.cu — both tensor-core prefill GEMMs (launch_matmul_tc, decoding weights in
// its tiles; launch_gemm_f16, weights dequantised to a scratch first) against an f64 host reference over the
// dequantised weights: every weight format, row counts around the 64/128-row tiles, column counts off the
// 128-column tile, 1-3 weights per launch, Store / AddInto / SwiGlu, with and without the fused RMSNorm,
// activations large enough to overflow f16 unscaled, weight chunks (a small scratch cap) cutting through
// weights; guard zones catch stray writes. Ends with timings of both (n_in=2048, n_out=8192, 128 and 512
// rows) that the lead reads; --quick skips them and the bench-sized checks (for compute-sanitizer).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/gemm_f16.h"
#include "backends/cuda/matmul_tc.h"
#include "cuda_test.h"
#include "quant/quant.h"

using namespace kvant;
using cuda::MatvecEpilogue;

namespace {

// Tolerance on ||y - ref|| / ||ref||. Operands are rounded to f16 (unit roundoff u = 2^-11 ≈ 4.9e-4;
// weights and activations each, products and sums in f32): each product carries a relative error of at
// most 2u ≈ 1e-3, and with random signs the error of a dot product is about that times ||w·x||₂ / |y|
// ~ 1 for random data, so ~5e-4 is typical (SwiGlu compounds two dots: ~1e-3). 5e-3 leaves a 5-10x
// margin while a wrong element, row, scale or tile edge gives errors of order 1.
constexpr double kTol = 5e-3;
constexpr int kGuard = 64;  // floats of guard zone before and after each output

int g_checks = 0;
#define TC_CHECK(cond, ...) \
  do {                      \
    ++g_checks;             \
    CHECK(cond, __VA_ARGS__); \
  } while (0)

struct HostWeight {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // [n_out][n_in]
  size_t row_bytes = 0;
  int n_in = 0, n_out = 0;
};

HostWeight make_weight(GgmlType type, int n_in, int n_out, uint64_t seed) {
  test::QuantisedRows q = test::quantised_random_rows(type, n_in, n_out, seed);
  HostWeight w;
  w.n_in = n_in;
  w.n_out = n_out;
  w.row_bytes = q.row_bytes;
  w.bytes = std::move(q.bytes);
  w.deq = std::move(q.deq);
  return w;
}

template <typename T>
T* upload(cuda::DeviceBuffer& buf, const std::vector<T>& v) {
  buf = cuda::DeviceBuffer(v.size() * sizeof(T));
  KVANT_CUDA_CHECK(cudaMemcpy(buf.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return buf.as<T>();
}

// xin = x / rms(x) * g per row (the CPU's float formula, sum of squares in double), or x without g.
std::vector<float> input_rows(const std::vector<float>& x, const std::vector<float>& g, int n_rows, int n_in,
                              float eps) {
  if (g.empty()) return x;
  std::vector<float> o(x.size());
  for (int r = 0; r < n_rows; ++r) {
    const float* xr = x.data() + size_t(r) * n_in;
    double s = 0;
    for (int i = 0; i < n_in; ++i) s += double(xr[i]) * xr[i];
    const float sc = 1.0f / std::sqrt(float(s / n_in) + eps);
    for (int i = 0; i < n_in; ++i) o[size_t(r) * n_in + i] = xr[i] * sc * g[i];
  }
  return o;
}

// ref[r][j] = Σ_i W[j][i] · xin[r][i] in double, for the listed rows only (others left 0).
std::vector<double> ref_matmul(const HostWeight& w, const std::vector<float>& xin, int n_rows,
                               const std::vector<int>& rows) {
  std::vector<double> y(size_t(n_rows) * w.n_out, 0.0);
  for (int r : rows)
    for (int j = 0; j < w.n_out; ++j) {
      const float* wr = w.deq.data() + size_t(j) * w.n_in;
      const float* xr = xin.data() + size_t(r) * w.n_in;
      double s0 = 0, s1 = 0;
      for (int i = 0; i < w.n_in; i += 2) {
        s0 += double(wr[i]) * xr[i];
        s1 += double(wr[i + 1]) * xr[i + 1];
      }
      y[size_t(r) * w.n_out + j] = s0 + s1;
    }
  return y;
}

struct Case {
  GgmlType type;
  int n_rows, n_in;
  std::vector<int> n_out;  // one per weight
  MatvecEpilogue epi;
  bool norm;
  float x_scale = 1.0f, g_scale = 0.2f;  // activation stddev; norm weight = 1 + N(0, g_scale)
  bool sample_rows = false;              // reference on a few rows only (big cases)
};

// Which GEMM a case runs through; the f16 path with a scratch cap of cap_bytes (0: the default).
struct Path {
  bool f16 = false;
  size_t cap_bytes = 0;
};
const char* path_name(const Path& p) { return !p.f16 ? "tiles" : p.cap_bytes ? "f16/chunked" : "f16"; }

bool path_supports(const Path& p, const cuda::MatvecArgs& a) {
  return p.f16 ? cuda::gemm_f16_supports(a) : cuda::matmul_tc_supports(a);
}
void launch_path(const Path& p, const cuda::MatvecArgs& a) {
  if (!p.f16) return cuda::launch_matmul_tc(a, nullptr);
  cuda::GemmScratch scratch = p.cap_bytes ? cuda::GemmScratch(p.cap_bytes) : cuda::GemmScratch();
  TC_CHECK(cuda::launch_gemm_f16(a, scratch, nullptr), "gemm_f16: scratch allocation failed");
  KVANT_CUDA_CHECK(cudaDeviceSynchronize());  // before the scratch goes
}

const char* epi_name(MatvecEpilogue e) {
  return e == MatvecEpilogue::Store ? "store" : e == MatvecEpilogue::AddInto ? "add" : "swiglu";
}

void run_case(const Case& c, uint64_t seed, const Path& path = {}) {
  const int n_w = int(c.n_out.size());
  std::vector<HostWeight> w;
  for (int k = 0; k < n_w; ++k) w.push_back(make_weight(c.type, c.n_in, c.n_out[k], seed * 31 + k));
  std::vector<float> x = test::random_normal(size_t(c.n_rows) * c.n_in, seed * 7 + 1, c.x_scale);
  std::vector<float> g;
  if (c.norm) {
    g = test::random_normal(c.n_in, seed * 7 + 2, c.g_scale);
    for (float& v : g) v += 1.0f;
  }
  const float eps = 1e-5f;
  std::vector<int> rows;
  if (c.sample_rows) {
    rows = {0, 1, 63, 64, c.n_rows / 2 + 5, c.n_rows - 1};
  } else {
    for (int r = 0; r < c.n_rows; ++r) rows.push_back(r);
  }
  const std::vector<float> xin = input_rows(x, g, c.n_rows, c.n_in, eps);

  cuda::MatvecArgs a;
  a.n_w = n_w;
  a.n_rows = c.n_rows;
  a.eps = eps;
  a.epilogue = c.epi;
  cuda::DeviceBuffer dx, dg, dw[3], dy[3];
  a.x = upload(dx, x);
  if (c.norm) a.norm_w = upload(dg, g);
  const int n_y = c.epi == MatvecEpilogue::SwiGlu ? 1 : n_w;
  std::vector<std::vector<float>> y0(n_y);  // initial outputs with guards (AddInto: random body)
  for (int k = 0; k < n_w; ++k) {
    a.w[k] = {upload(dw[k], w[k].bytes), c.type, c.n_in, c.n_out[k], w[k].row_bytes};
  }
  for (int k = 0; k < n_y; ++k) {
    const size_t n = size_t(c.n_rows) * c.n_out[k];
    y0[k].assign(n + 2 * kGuard, 0.0f);
    std::memset(y0[k].data(), 0xFF, y0[k].size() * sizeof(float));  // NaN poison
    if (c.epi == MatvecEpilogue::AddInto) {
      const std::vector<float> body = test::random_normal(n, seed * 7 + 3 + k);
      std::copy(body.begin(), body.end(), y0[k].begin() + kGuard);
    }
    a.y[k] = upload(dy[k], y0[k]) + kGuard;
  }
  TC_CHECK(path_supports(path, a), "%s: supports() refused %s", path_name(path), ggml_type_name(c.type).data());
  launch_path(path, a);
  KVANT_CUDA_CHECK(cudaDeviceSynchronize());

  // Expected values on the checked rows.
  std::vector<std::vector<double>> ref(n_w);
  for (int k = 0; k < n_w; ++k) ref[k] = ref_matmul(w[k], xin, c.n_rows, rows);
  if (c.epi == MatvecEpilogue::SwiGlu)
    for (size_t i = 0; i < ref[0].size(); ++i) ref[0][i] = ref[0][i] / (1.0 + std::exp(-ref[0][i])) * ref[1][i];

  double worst = 0;
  bool guards_ok = true;
  for (int k = 0; k < n_y; ++k) {
    std::vector<float> got(y0[k].size());
    KVANT_CUDA_CHECK(cudaMemcpy(got.data(), dy[k].get(), got.size() * sizeof(float), cudaMemcpyDeviceToHost));
    guards_ok = guards_ok && std::memcmp(got.data(), y0[k].data(), kGuard * sizeof(float)) == 0 &&
                std::memcmp(got.data() + got.size() - kGuard, y0[k].data() + got.size() - kGuard,
                            kGuard * sizeof(float)) == 0;
    std::vector<float> diff, want;  // over the checked rows
    for (int r : rows)
      for (int j = 0; j < c.n_out[k]; ++j) {
        const size_t i = size_t(r) * c.n_out[k] + j;
        float v = got[kGuard + i];
        if (c.epi == MatvecEpilogue::AddInto) v -= y0[k][kGuard + i];  // the product part
        diff.push_back(v);
        want.push_back(float(ref[k][i]));
      }
    worst = std::max(worst, test::rel_error(diff, want));
  }
  std::string outs;
  for (int n : c.n_out) outs += (outs.empty() ? "" : "+") + std::to_string(n);
  std::printf("%-11s %-5s rows=%-4d n_in=%-5d n_out=%-12s %-6s norm=%d x*%-6g rel err %.2e%s\n", path_name(path),
              std::string(ggml_type_name(c.type)).c_str(), c.n_rows, c.n_in, outs.c_str(), epi_name(c.epi),
              int(c.norm), double(c.x_scale), worst, guards_ok ? "" : "  GUARD WRITTEN");
  TC_CHECK(worst < kTol, "%s %s rows=%d n_in=%d %s rel err %.3g", path_name(path),
           std::string(ggml_type_name(c.type)).c_str(), c.n_rows, c.n_in, epi_name(c.epi), worst);
  TC_CHECK(guards_ok, "%s %s rows=%d: a write outside y", path_name(path), std::string(ggml_type_name(c.type)).c_str(),
           c.n_rows);
}

void test_supports() {
  HostWeight w = make_weight(GgmlType::Q8_0, 64, 4, 1);
  cuda::DeviceBuffer dw, dx, dy;
  std::vector<float> x(64 * 16 + 4, 1.0f);
  cuda::MatvecArgs a;
  a.n_rows = 16;
  a.x = upload(dx, x);
  a.w[0] = {upload(dw, w.bytes), GgmlType::Q8_0, 64, 4, w.row_bytes};
  a.y[0] = upload(dy, std::vector<float>(64));
  TC_CHECK(cuda::matmul_tc_supports(a), "plain q8_0 refused");
  cuda::MatvecArgs b = a;
  b.w[0].type = GgmlType::Q5_0;
  TC_CHECK(!cuda::matmul_tc_supports(b), "q5_0 accepted");
  b = a;
  b.w[0].n_in = 48;
  TC_CHECK(!cuda::matmul_tc_supports(b), "n_in=48 accepted");
  b = a;
  b.x = a.x + 1;
  TC_CHECK(!cuda::matmul_tc_supports(b), "misaligned x accepted");
  b = a;
  b.epilogue = MatvecEpilogue::SwiGlu;
  TC_CHECK(!cuda::matmul_tc_supports(b), "swiglu with one weight accepted");
  b = a;
  b.w[0].type = GgmlType::Q4_K;  // n_in 64 is not a whole super-block
  TC_CHECK(!cuda::matmul_tc_supports(b), "q4_k with n_in=64 accepted");
  TC_CHECK(!cuda::gemm_f16_supports(b), "gemm_f16: q4_k with n_in=64 accepted");
  // The f16 GEMM interleaves SwiGlu gate/up rows in groups of 8: other heights go to the tiles.
  b = a;
  b.n_w = 2;
  b.w[1] = b.w[0];
  b.epilogue = MatvecEpilogue::SwiGlu;
  TC_CHECK(cuda::matmul_tc_supports(b) && !cuda::gemm_f16_supports(b), "swiglu n_out=4: tiles only");
  b.w[0].n_out = b.w[1].n_out = 8;
  TC_CHECK(cuda::gemm_f16_supports(b), "gemm_f16: swiglu n_out=8 refused");
}

void bench(GgmlType type, MatvecEpilogue epi, int n_rows, const Path& path) {
  const int n_in = 2048, n_out = 8192;
  const int n_w = epi == MatvecEpilogue::SwiGlu ? 2 : 1;
  cuda::MatvecArgs a;
  a.n_w = n_w;
  a.n_rows = n_rows;
  a.epilogue = epi;
  cuda::DeviceBuffer dx, dw[2], dy;
  std::vector<HostWeight> w;
  for (int k = 0; k < n_w; ++k) w.push_back(make_weight(type, n_in, n_out, 90 + k));
  a.x = upload(dx, test::random_normal(size_t(n_rows) * n_in, 91));
  for (int k = 0; k < n_w; ++k) a.w[k] = {upload(dw[k], w[k].bytes), type, n_in, n_out, w[k].row_bytes};
  a.y[0] = upload(dy, std::vector<float>(size_t(n_rows) * n_out, 0.0f));
  cuda::GemmScratch scratch;
  auto launch = [&] {
    if (!path.f16) return cuda::launch_matmul_tc(a, nullptr);
    TC_CHECK(cuda::launch_gemm_f16(a, scratch, nullptr), "gemm_f16: scratch allocation failed");
  };
  for (int i = 0; i < 3; ++i) launch();
  cudaEvent_t t0, t1;
  KVANT_CUDA_CHECK(cudaEventCreate(&t0));
  KVANT_CUDA_CHECK(cudaEventCreate(&t1));
  const int reps = 20;
  KVANT_CUDA_CHECK(cudaEventRecord(t0, nullptr));
  for (int i = 0; i < reps; ++i) launch();
  KVANT_CUDA_CHECK(cudaEventRecord(t1, nullptr));
  KVANT_CUDA_CHECK(cudaEventSynchronize(t1));
  float ms = 0;
  KVANT_CUDA_CHECK(cudaEventElapsedTime(&ms, t0, t1));
  ms /= reps;
  const double flop = 2.0 * n_rows * n_in * double(n_out) * n_w;
  std::printf("bench %-5s %-5s %-6s rows=%d n_in=%d n_out=%d%s: %.3f ms, %.1f TFLOP/s\n", path_name(path),
              std::string(ggml_type_name(type)).c_str(), epi_name(epi), n_rows, n_in, n_out, n_w == 2 ? "x2" : "", ms,
              flop / (ms * 1e-3) / 1e12);
  KVANT_CUDA_CHECK(cudaEventDestroy(t0));
  KVANT_CUDA_CHECK(cudaEventDestroy(t1));
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IONBF, 0);
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";  // no big cases or timings (sanitizers)
  test::require_device();
  test_supports();

  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
                            GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
  uint64_t seed = 100;
  for (const Path& path : {Path{false}, Path{true}}) {
    for (GgmlType t : types) {
      const bool kquant = quant_traits(t)->block_elems == 256;
      // 288 = 9 units: a half chunk at the end and rows 2 mod 4 bytes long (edge copies); K-quants need 256s.
      const int odd_in = kquant ? 2048 : 288;
      run_case({t, 17, 256, {200}, MatvecEpilogue::Store, false}, ++seed, path);
      run_case({t, 100, 2048, {200, 72, 136}, MatvecEpilogue::Store, true}, ++seed, path);
      run_case({t, 64, 4096 + 256, {136, 136}, MatvecEpilogue::SwiGlu, true}, ++seed, path);
      run_case({t, 16, odd_in, {130, 40}, MatvecEpilogue::AddInto, false}, ++seed, path);
      run_case({t, 512, 256, {200}, MatvecEpilogue::Store, true}, ++seed, path);
      run_case({t, 129, 512, {8, 8}, MatvecEpilogue::SwiGlu, false}, ++seed, path);
    }
    // 4096+256 with Q6_K: 17 super-blocks of 210 bytes, rows 2 mod 4 (edge copies for the K-quant path too).
    run_case({GgmlType::Q6_K, 33, 4096 + 256, {70}, MatvecEpilogue::AddInto, true}, ++seed, path);
    run_case({GgmlType::Q8_0, 40, 288, {3, 129, 1}, MatvecEpilogue::AddInto, true}, ++seed, path);
    const int swiglu_out = path.f16 ? 296 : 300;  // the f16 path takes SwiGlu heights in multiples of 8
    run_case({GgmlType::Q4_0, 100, 2048, {swiglu_out, swiglu_out}, MatvecEpilogue::SwiGlu, false}, ++seed, path);
    // Below the intended range (launch_matvec keeps those) but still exact: 1 and 5 rows.
    run_case({GgmlType::Q8_0, 1, 2048, {200}, MatvecEpilogue::Store, true}, ++seed, path);
    run_case({GgmlType::Q4_K, 5, 2048, {200, 50}, MatvecEpilogue::Store, false}, ++seed, path);
    // Activations far beyond the f16 range (|x| ~ 1e5..5e5): exercised through the per-row power-of-2 scale.
    run_case({GgmlType::Q8_0, 70, 2048, {200}, MatvecEpilogue::Store, false, 1e5f}, ++seed, path);
    run_case({GgmlType::F16, 70, 2048, {136, 136}, MatvecEpilogue::SwiGlu, false, 1e5f}, ++seed, path);
    // Large norm weights (|g| ~ 1e4): the scale bound uses |x·g|.
    run_case({GgmlType::Q4_K, 70, 2048, {200}, MatvecEpilogue::AddInto, true, 3.0f, 1e4f}, ++seed, path);
  }
  // The f16 path with a 64 KB weight scratch (128 rows of 256 halves): 3 weights of 200+72+136 rows run as
  // 4 chunks whose edges fall inside weights; SwiGlu over 2·136 rows as 3 chunks (the last one partial).
  const Path chunked{true, 128 * 256 * 2};
  run_case({GgmlType::Q8_0, 150, 256, {200, 72, 136}, MatvecEpilogue::Store, true}, ++seed, chunked);
  run_case({GgmlType::Q4_K, 150, 256, {136, 136}, MatvecEpilogue::SwiGlu, true}, ++seed, chunked);
  run_case({GgmlType::Q6_K, 20, 256, {300}, MatvecEpilogue::AddInto, false}, ++seed, chunked);
  if (quick) {
    std::printf("%d checks, %d failures\n", g_checks, test::failures());
    return test::finish("test_cuda_matmul_tc");
  }
  // The bench shape, checked on sampled rows.
  for (const Path& path : {Path{false}, Path{true}}) {
    run_case({GgmlType::Q8_0, 512, 2048, {8192}, MatvecEpilogue::Store, true, 1.0f, 0.2f, true}, ++seed, path);
    run_case({GgmlType::Q4_K, 512, 2048, {2048, 2048}, MatvecEpilogue::SwiGlu, true, 1.0f, 0.2f, true}, ++seed, path);
  }
  for (int rows : {128, 512})
    for (const Path& path : {Path{false}, Path{true}}) {
      bench(GgmlType::Q8_0, MatvecEpilogue::Store, rows, path);
      bench(GgmlType::Q8_0, MatvecEpilogue::SwiGlu, rows, path);
      bench(GgmlType::Q4_K, MatvecEpilogue::Store, rows, path);
      bench(GgmlType::F16, MatvecEpilogue::Store, rows, path);
    }

  std::printf("%d checks, %d failures\n", g_checks, test::failures());
  return test::finish("test_cuda_matmul_tc");
}
