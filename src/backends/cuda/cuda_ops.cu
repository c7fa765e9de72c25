// backends/cuda/cuda_ops.cu — CudaOps: op recording, device residency (weights, KV mirror, tables),
// graph capture/replay, and the device probe + factory of cuda_backend.h. The fusion planner lives in
// cuda_plan.cu.
#include "backends/cuda/cuda_ops.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/kv_device.cuh"
#include "kv/hadamard.h"
#include "kv/kv_cache.h"
#include "kv/lloyd_max.h"
#include "quant/quant.h"

namespace kvant {

namespace cuda {
bool env_switch_on(const char* name) {
  const char* env = std::getenv(name);
  return env == nullptr || std::string(env) != "0";
}

int device_sm_count() {
  static const int n = [] {
    int dev = 0, sms = 1;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    return sms;
  }();
  return n;
}

bool device_is_sm90_or_later() {
  static const bool sm90 = [] {
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 9;
  }();
  return sm90;
}

bool pdl_enabled() {
  static const bool enabled = env_switch_on("KVANT_CUDA_PDL") && device_is_sm90_or_later();
  return enabled;
}
}  // namespace cuda

const CudaDeviceInfo& cuda_device_info() {
  static const CudaDeviceInfo info = [] {
    CudaDeviceInfo i;
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
      i.reason = std::string("no CUDA device (") + (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices") + ")";
      cudaGetLastError();  // clear the sticky-free error state
      return i;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
      i.reason = "cannot read CUDA device 0 properties";
      return i;
    }
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
      i.reason = "cannot query CUDA device memory";
      return i;
    }
    i.available = true;
    i.name = prop.name;
    i.free_bytes = free_b;
    i.total_bytes = total_b;
    return i;
  }();
  return info;
}

Expected<std::unique_ptr<Ops>> make_cuda_ops() {
  const CudaDeviceInfo& dev = cuda_device_info();
  if (!dev.available) return Status::error(dev.reason);
  return std::unique_ptr<Ops>(new cuda::CudaOps());
}

namespace cuda {

CudaOps::CudaOps() {
  KVANT_CUDA_CHECK(cudaSetDevice(0));
  KVANT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  KVANT_CUDA_CHECK(cudaStreamCreateWithFlags(&side_stream_, cudaStreamNonBlocking));
  KVANT_CUDA_CHECK(cudaEventCreateWithFlags(&fork_event_, cudaEventDisableTiming));
  KVANT_CUDA_CHECK(cudaEventCreateWithFlags(&join_event_, cudaEventDisableTiming));
  graphs_enabled_ = env_switch_on("KVANT_CUDA_GRAPHS");
  fuse_token_write_ = env_switch_on("KVANT_CUDA_FUSE_KV");
  pinned_logits_ = env_switch_on("KVANT_CUDA_PINNED_LOGITS");
  evict_weights_ = env_switch_on("KVANT_CUDA_EVICT_WEIGHTS");
  evict_kv_ = env_switch_on("KVANT_CUDA_EVICT_KV");
  early_dependents_ = env_switch_on("KVANT_CUDA_EARLY_LAUNCH");
  early_matvec_ = env_switch_on("KVANT_CUDA_EARLY_MATVEC");
  per_head_attention_ = env_switch_on("KVANT_CUDA_ATTN_PER_HEAD");
  attention_values_early_ = env_switch_on("KVANT_CUDA_ATTN_VALUES_EARLY");
  mma_attention_ = env_switch_on("KVANT_CUDA_ATTN_MMA") && device_is_sm90_or_later();  // bulk copies: sm_90
  attention_early_stage_ = env_switch_on("KVANT_CUDA_ATTN_EARLY_STAGE");
  if (const char* s = std::getenv("KVANT_CUDA_ATTN_LUT"); s != nullptr && *s != 0)
    attention_lut_copies_ = std::atoi(s) == 32 ? 32 : 16;
  if (const char* s = std::getenv("KVANT_CUDA_ATTN_STAGES"); s != nullptr && *s != 0)
    attention_stages_ = std::clamp(std::atoi(s), 2, 8);
  if (const char* s = std::getenv("KVANT_CUDA_ATTN_STEP"); s != nullptr && *s != 0)
    attention_step_keys_ = std::atoi(s) == 64 ? 64 : 32;
  if (const char* s = std::getenv("KVANT_CUDA_ATTN_WARPS"); s != nullptr && *s != 0)
    attention_warps_ = std::atoi(s) == 4 ? 4 : kAttnWideWarps;
  if (const char* s = std::getenv("KVANT_CUDA_ATTN_WIDE_KEYS"); s != nullptr && *s != 0)
    attention_wide_keys_ = std::max(1, std::atoi(s));
  if (const char* s = std::getenv("KVANT_CUDA_COMBINE_THREADS"); s != nullptr && *s != 0)
    combine_threads_ = std::clamp(std::atoi(s) / 32 * 32, 0, 1024);  // 0: the rule
  if (const char* s = std::getenv("KVANT_CUDA_ATTN_SPLITS"); s != nullptr && *s != 0)
    attention_splits_ = std::clamp(std::atoi(s), 0, 256);  // 0: the rule in attention_splits
  if (const char* s = std::getenv("KVANT_CUDA_MATVEC_PAIR"); s != nullptr && *s != 0) pair_matvec_ = std::atoi(s) != 0;
  logits_direct_ = env_switch_on("KVANT_CUDA_LOGITS_DIRECT");
  rope_table_enabled_ = env_switch_on("KVANT_CUDA_ROPE_TABLE");
  if (const char* s = std::getenv("KVANT_CUDA_LATE_PCT"); s != nullptr && *s != 0) late_pct_ = std::clamp(std::atoi(s), 1, 100);
  // Tables: signs [kKvMaxHeadDim], then centroids and boundaries of 2..5 bits.
  std::vector<float> host(kKvMaxHeadDim, 0.0f);
  std::memcpy(host.data(), kv_rotation_signs(), sizeof(float) * kKvMaxHeadDim);
  size_t offsets[4][2];
  for (int bits = 2; bits <= 5; ++bits) {
    const LloydMaxCodebook& book = lloyd_max_codebook(bits);
    offsets[bits - 2][0] = host.size();
    host.insert(host.end(), book.centroids, book.centroids + book.size);
    offsets[bits - 2][1] = host.size();
    host.insert(host.end(), book.boundaries, book.boundaries + book.size - 1);
  }
  tables_buf_ = DeviceBuffer(host.size() * sizeof(float));
  KVANT_CUDA_CHECK(cudaMemcpy(tables_buf_.get(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  KVANT_CUDA_CHECK(cudaDeviceSynchronize());  // see weight(): stream_ does not wait for this copy
  const float* base = tables_buf_.as<float>();
  tables_.signs = base;
  for (int b = 0; b < 4; ++b) {
    tables_.centroids[b] = base + offsets[b][0];
    tables_.boundaries[b] = base + offsets[b][1];
  }
}

CudaOps::~CudaOps() {
  if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  if (graph_) cudaGraphDestroy(graph_);
  if (host_io_) cudaFreeHost(host_io_);
  if (host_logits_) cudaFreeHost(host_logits_);
  if (fork_event_) cudaEventDestroy(fork_event_);
  if (join_event_) cudaEventDestroy(join_event_);
  if (side_stream_) cudaStreamDestroy(side_stream_);
  if (stream_) cudaStreamDestroy(stream_);
}

float* CudaOps::alloc_activations(size_t n) {
  activations_.emplace_back(n * sizeof(float));
  // On our stream: a legacy-stream memset does not order with a non-blocking stream.
  KVANT_CUDA_CHECK(cudaMemsetAsync(activations_.back().get(), 0, n * sizeof(float), stream_));
  bump_epoch();
  return activations_.back().as<float>();
}

// ---- recording ----

void CudaOps::record(const Op& op) {
  if (in_forward_) {
    ops_.push_back(op);
  } else {
    run_immediately(op);
  }
}

void CudaOps::embed(const WeightView& table, const int32_t* tokens, int n, float* out) {
  Op op{OpKind::Embed, table};
  op.out = out;
  op.n_rows = n;
  op.ids = tokens;
  record(op);
}

void CudaOps::rmsnorm(const float* x, const WeightView& weight, int n_rows, int dim, float eps, float* out) {
  Op op{OpKind::RmsNorm, weight};
  op.a = x;
  op.out = out;
  op.n_rows = n_rows;
  op.dim = dim;
  op.eps = eps;
  record(op);
}

void CudaOps::matmul(const WeightView& w, const float* x, int n_rows, float* y) {
  Op op{OpKind::Matmul, w};
  op.a = x;
  op.out = y;
  op.n_rows = n_rows;
  record(op);
}

void CudaOps::rope(float* x, int n_rows, int n_heads, const int32_t* positions, const RopeConfig& cfg) {
  Op op{OpKind::Rope};
  op.out = x;
  op.n_rows = n_rows;
  op.n_heads = n_heads;
  op.rope = cfg;
  op.ids = positions;
  record(op);
}

void CudaOps::kv_write(KvCache& cache, int layer, const float* k, const float* v, int n_rows,
                       const int32_t* positions) {
  Op op{OpKind::KvWrite};
  op.a = k;
  op.b = v;
  op.n_rows = n_rows;
  op.layer = layer;
  op.cache = &cache;
  op.ids = positions;
  record(op);
  // Host bookkeeping happens at once, whether the kernels run now, later or from a graph.
  for (int r = 0; r < n_rows; ++r) cache.cells().occupy(KvCells::cell_for_position(positions[r]), positions[r]);
}

void CudaOps::attention(const KvCache& cache, int layer, const float* q, int n_rows, int n_heads,
                        const int32_t* positions, float* out) {
  Op op{OpKind::Attention};
  op.a = q;
  op.out = out;
  op.n_rows = n_rows;
  op.n_heads = n_heads;
  op.layer = layer;
  op.cache = const_cast<KvCache*>(&cache);
  op.ids = positions;
  record(op);
}

void CudaOps::swiglu(const float* gate, const float* up, int64_t n, float* out) {
  Op op{OpKind::SwiGlu};
  op.a = gate;
  op.b = up;
  op.out = out;
  op.n = n;
  record(op);
}

void CudaOps::add(float* x, const float* y, int64_t n) {
  Op op{OpKind::Add};
  op.a = y;
  op.out = x;
  op.n = n;
  record(op);
}

// ---- residency ----

const DeviceMatrix& CudaOps::weight(const WeightView& w) {
  auto it = weights_.find(w.data);
  if (it != weights_.end()) return it->second.m;
  DeviceWeight dw;
  dw.m.n_in = int(w.n_in);
  dw.m.n_out = int(w.n_out);
  const size_t n_rows = size_t(w.n_out);
  if (matvec_supports(w.type)) {
    dw.m.type = w.type;
    dw.m.row_bytes = w.row_bytes;
    dw.buf = DeviceBuffer(n_rows * w.row_bytes);
    KVANT_CUDA_CHECK(cudaMemcpy(dw.buf.get(), w.data, n_rows * w.row_bytes, cudaMemcpyHostToDevice));
  } else {  // generic path: exact dequantisation to f32 at upload
    const QuantTraits* traits = quant_traits(w.type);
    if (traits == nullptr) {
      std::fprintf(stderr, "kvant cuda: weight type %u has no dequantiser\n", unsigned(w.type));
      std::abort();
    }
    dw.m.type = GgmlType::F32;
    dw.m.row_bytes = size_t(w.n_in) * sizeof(float);
    std::vector<float> rows(size_t(w.n_in) * std::min<size_t>(n_rows, 4096));
    dw.buf = DeviceBuffer(n_rows * dw.m.row_bytes);
    for (size_t r0 = 0; r0 < n_rows; r0 += 4096) {
      const size_t nr = std::min<size_t>(4096, n_rows - r0);
      for (size_t r = 0; r < nr; ++r) traits->dequantize_row(w.row(int64_t(r0 + r)), rows.data() + r * w.n_in, w.n_in);
      KVANT_CUDA_CHECK(cudaMemcpy(dw.buf.as<uint8_t>() + r0 * dw.m.row_bytes, rows.data(), nr * dw.m.row_bytes,
                                  cudaMemcpyHostToDevice));
    }
  }
  dw.m.data = dw.buf.as<uint8_t>();
  // A pageable cudaMemcpy may return before its DMA lands, and stream_ is non-blocking (it does not wait
  // for the legacy stream): finish the upload before any kernel on stream_ reads it.
  KVANT_CUDA_CHECK(cudaDeviceSynchronize());
  bump_epoch();
  return weights_.emplace(w.data, std::move(dw)).first->second.m;
}

const float* CudaOps::freq_factors(const float* host, int n) {
  if (host == nullptr) return nullptr;
  auto it = freq_factors_.find(host);
  if (it != freq_factors_.end()) return it->second.as<float>();
  DeviceBuffer buf(size_t(n) * sizeof(float));
  KVANT_CUDA_CHECK(cudaMemcpy(buf.get(), host, size_t(n) * sizeof(float), cudaMemcpyHostToDevice));
  KVANT_CUDA_CHECK(cudaDeviceSynchronize());  // see weight(): stream_ does not wait for this copy
  bump_epoch();
  return freq_factors_.emplace(host, std::move(buf)).first->second.as<float>();
}

CudaOps::KvLayerBytes CudaOps::kv_layer_bytes(const KvCache& cache) {
  const KvCacheConfig& c = cache.config();
  return {size_t(c.n_head_kv) * c.n_ctx * cache.k_vector_bytes(), size_t(c.n_head_kv) * c.n_ctx * cache.v_vector_bytes(),
          size_t(c.n_head_kv) * cache.window_ring_slots() * cache.window_vector_bytes()};
}

// A turbo half of a layer (K or V: n vectors of vec_bytes) in the host's order, [n][scale, codes], and in
// the device's (TurboHalf: every code row, then every scale).
static void turbo_to_device_order(const uint8_t* host, uint8_t* out, size_t n, size_t vec_bytes) {
  const size_t code_bytes = vec_bytes - 2;
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(out + i * code_bytes, host + i * vec_bytes + 2, code_bytes);
    std::memcpy(out + n * code_bytes + 2 * i, host + i * vec_bytes, 2);
  }
}
static void turbo_to_host_order(const uint8_t* dev_order, uint8_t* host, size_t n, size_t vec_bytes) {
  const size_t code_bytes = vec_bytes - 2;
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(host + i * vec_bytes, dev_order + n * code_bytes + 2 * i, 2);
    std::memcpy(host + i * vec_bytes + 2, dev_order + i * code_bytes, code_bytes);
  }
}
// Copies `bytes` of one K or V half (or window ring) between device and host; turbo_vec > 0: a turbo half
// of vectors of that size, reordered between the two layouts on the host.
static void copy_kv_to_device(uint8_t* dev, const uint8_t* host, size_t bytes, size_t turbo_vec) {
  if (turbo_vec == 0) {
    KVANT_CUDA_CHECK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
    return;
  }
  std::vector<uint8_t> tmp(bytes);
  turbo_to_device_order(host, tmp.data(), bytes / turbo_vec, turbo_vec);
  KVANT_CUDA_CHECK(cudaMemcpy(dev, tmp.data(), bytes, cudaMemcpyHostToDevice));
}
static void copy_kv_to_host(const uint8_t* dev, uint8_t* host, size_t bytes, size_t turbo_vec) {
  if (turbo_vec == 0) {
    KVANT_CUDA_CHECK(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
    return;
  }
  std::vector<uint8_t> tmp(bytes);
  KVANT_CUDA_CHECK(cudaMemcpy(tmp.data(), dev, bytes, cudaMemcpyDeviceToHost));
  turbo_to_host_order(tmp.data(), host, bytes / turbo_vec, turbo_vec);
}

// Calls f(device, host, bytes, turbo_vec) for every layer's K (k bytes), V (v) and window rings (w each) of
// a device mirror and a host cache (Host: KvCache or const KvCache); turbo_vec: the vector bytes of a turbo
// K or V half (its layouts differ, TurboHalf), else 0.
template <typename Host, typename F>
static void for_each_kv_run(const std::vector<DeviceKvLayer>& layers, Host& host, size_t k, size_t v, size_t w, F f) {
  const KvCacheConfig& c = host.config();
  const size_t k_turbo = kv_type_is_turbo(c.type_k) ? host.k_vector_bytes() : 0;
  const size_t v_turbo = kv_type_is_turbo(c.type_v) ? host.v_vector_bytes() : 0;
  for (uint32_t l = 0; l < uint32_t(layers.size()); ++l) {
    f(layers[l].k, host.k_vector(l, 0, 0), k, k_turbo);
    f(layers[l].v, host.v_vector(l, 0, 0), v, v_turbo);
    if (w > 0) {
      f(layers[l].k_win, host.k_window(l, 0, 0), w, size_t(0));
      f(layers[l].v_win, host.v_window(l, 0, 0), w, size_t(0));
    }
  }
}

Status CudaOps::check_kv_copy(const KvCache& cache, const KvCache& host) const {
  const KvLayerBytes want = kv_layer_bytes(cache), have = kv_layer_bytes(host);
  if (!host.has_host_storage() || want.k != have.k || want.v != have.v || want.window != have.window ||
      cache.config().n_layer != host.config().n_layer) {
    return Status::error("KV cache copy: the host cache's layout differs from the device cache's");
  }
  return Status::ok();
}

Status CudaOps::download_kv(KvCache& cache, KvCache& host) {
  KVANT_RETURN_IF_ERROR(check_kv_copy(cache, host));
  DeviceKv& dk = kv(cache);
  KVANT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  const KvLayerBytes b = kv_layer_bytes(cache);
  for_each_kv_run(dk.layers, host, b.k, b.v, b.window, copy_kv_to_host);
  return Status::ok();
}

Status CudaOps::upload_kv(KvCache& cache, const KvCache& host) {
  KVANT_RETURN_IF_ERROR(check_kv_copy(cache, host));
  DeviceKv& dk = kv(cache);
  KVANT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  const KvLayerBytes b = kv_layer_bytes(cache);
  for_each_kv_run(dk.layers, host, b.k, b.v, b.window, copy_kv_to_device);
  return Status::ok();
}

CudaOps::DeviceKv& CudaOps::kv(KvCache& cache) {
  const KvCacheConfig& c = cache.config();
  auto it = kvs_.find(&cache);
  if (it != kvs_.end()) {
    const DeviceKvConfig& d = it->second.cfg;
    // A different cache created at the same address (a new session's) gets fresh storage.
    if (d.type_k == c.type_k && d.type_v == c.type_v && d.n_ctx == int(c.n_ctx) && d.head_dim == int(c.head_dim) &&
        d.n_head_kv == int(c.n_head_kv) && d.window == int(cache.window()) && it->second.layers.size() == c.n_layer &&
        d.rotate_k == cache.k_codec().rotated() && d.rotate_v == cache.v_codec().rotated()) {
      return it->second;
    }
    kvs_.erase(it);
  }
  DeviceKv dk;
  dk.cfg.type_k = c.type_k;
  dk.cfg.type_v = c.type_v;
  dk.cfg.rotate_k = cache.k_codec().rotated();
  dk.cfg.rotate_v = cache.v_codec().rotated();
  dk.cfg.head_dim = int(c.head_dim);
  dk.cfg.n_head_kv = int(c.n_head_kv);
  dk.cfg.n_ctx = int(c.n_ctx);
  dk.cfg.k_bytes = cache.k_vector_bytes();
  dk.cfg.v_bytes = cache.v_vector_bytes();
  dk.cfg.window = int(cache.window());
  dk.cfg.ring_slots = int(cache.window_ring_slots());
  const KvLayerBytes bytes = kv_layer_bytes(cache);
  const size_t k_layer = bytes.k, v_layer = bytes.v, w_layer = bytes.window;
  auto align = [](size_t x) { return (x + 255) / 256 * 256; };
  const size_t per_layer = align(k_layer) + align(v_layer) + 2 * align(w_layer);
  dk.storage = DeviceBuffer(per_layer * c.n_layer);
  KVANT_CUDA_CHECK(cudaMemsetAsync(dk.storage.get(), 0, dk.storage.bytes(), stream_));
  // Host vectors to upload (a test's cache filled on the CPU); a session's cache has none.
  const bool has_content = cache.has_host_storage() && cache.cells().used() > 0;
  if (has_content) KVANT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    uint8_t* p = dk.storage.as<uint8_t>() + per_layer * l;
    DeviceKvLayer layer;
    layer.k = p;
    layer.v = p + align(k_layer);
    layer.k_win = w_layer ? layer.v + align(v_layer) : nullptr;
    layer.v_win = w_layer ? layer.k_win + align(w_layer) : nullptr;
    dk.layers.push_back(layer);
  }
  if (has_content) {
    const KvCache& host = cache;
    for_each_kv_run(dk.layers, host, k_layer, v_layer, w_layer, copy_kv_to_device);
    KVANT_CUDA_CHECK(cudaDeviceSynchronize());  // see weight()
  }
  dk.layer_table = DeviceBuffer(sizeof(DeviceKvLayer) * dk.layers.size());
  KVANT_CUDA_CHECK(cudaMemcpy(dk.layer_table.get(), dk.layers.data(), dk.layer_table.bytes(), cudaMemcpyHostToDevice));
  if (dk.cfg.window > 0 && (kv_type_is_turbo(c.type_k) || kv_type_is_turbo(c.type_v))) {
    dk.stage = DeviceBuffer(sizeof(float) * dk.layers.size() * 2 * size_t(c.n_head_kv) * c.head_dim);
  }
  bump_epoch();
  return kvs_.emplace(&cache, std::move(dk)).first->second;
}

void CudaOps::download_vector(KvCache& cache, bool k, int layer, int head, int cell, uint8_t* dst) {
  const DeviceKv& dk = kv(cache);
  const size_t bytes = k ? dk.cfg.k_bytes : dk.cfg.v_bytes;
  uint8_t* base = k ? dk.layers[size_t(layer)].k : dk.layers[size_t(layer)].v;
  KVANT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (kv_type_is_turbo(k ? dk.cfg.type_k : dk.cfg.type_v)) {  // host order: scale, then the code row
    const TurboHalf half(base, dk.cfg.n_head_kv, dk.cfg.n_ctx, bytes);
    KVANT_CUDA_CHECK(cudaMemcpy(dst, half.scale_at(head, cell), 2, cudaMemcpyDeviceToHost));
    KVANT_CUDA_CHECK(cudaMemcpy(dst + 2, half.code_row(head, cell), bytes - 2, cudaMemcpyDeviceToHost));
    return;
  }
  KVANT_CUDA_CHECK(cudaMemcpy(dst, base + (size_t(head) * dk.cfg.n_ctx + cell) * bytes, bytes, cudaMemcpyDeviceToHost));
}

void CudaOps::upload_ids(const int32_t* tokens, const int32_t* positions, int n) {
  if (n > io_capacity_) {
    if (host_io_) KVANT_CUDA_CHECK(cudaFreeHost(host_io_));
    io_capacity_ = std::max(n, 512);
    KVANT_CUDA_CHECK(cudaMallocHost(&host_io_, sizeof(int32_t) * 2 * io_capacity_));
    io_ = DeviceBuffer(sizeof(int32_t) * 2 * io_capacity_);
    d_tokens_ = io_.as<int32_t>();
    d_positions_ = d_tokens_ + io_capacity_;
    bump_epoch();
  }
  // The previous forward has synchronised: the pinned buffer is free to overwrite.
  if (tokens) std::memcpy(host_io_, tokens, sizeof(int32_t) * n);
  if (positions) std::memcpy(host_io_ + io_capacity_, positions, sizeof(int32_t) * n);
  KVANT_CUDA_CHECK(cudaMemcpyAsync(io_.get(), host_io_, sizeof(int32_t) * 2 * io_capacity_, cudaMemcpyHostToDevice, stream_));
}

// ---- forward ----

float* CudaOps::host_logit_buffer(size_t n) {
  // Page-locked memory is a scarce host resource: batches asking for more (perplexity over long
  // chunks keeps every row) copy through pageable memory instead.
  constexpr size_t kMaxPinnedLogitFloats = size_t(16) << 20;  // 64 MiB
  if (n > kMaxPinnedLogitFloats || !pinned_logits_) return nullptr;
  if (n > host_logits_capacity_) {
    if (host_logits_) KVANT_CUDA_CHECK(cudaFreeHost(host_logits_));
    host_logits_ = nullptr;
    host_logits_capacity_ = 0;
    if (cudaMallocHost(&host_logits_, n * sizeof(float)) != cudaSuccess) {
      cudaGetLastError();
      host_logits_ = nullptr;
      return nullptr;
    }
    host_logits_capacity_ = n;
    void* mapped = nullptr;
    host_logits_device_ = cudaHostGetDevicePointer(&mapped, host_logits_, 0) == cudaSuccess
                              ? static_cast<float*>(mapped) : nullptr;
    cudaGetLastError();
    bump_epoch();
  }
  return host_logits_;
}

float* CudaOps::begin_forward(const ForwardBatch& batch) {
  in_forward_ = true;
  batch_ = batch;
  // The output projection of a decode step may write straight into the caller's pinned logits buffer.
  logits_mapped_ = nullptr;
  logits_written_ = false;
  if (logits_direct_ && batch.n == 1 && host_logits_device_ != nullptr && batch.logits >= host_logits_ &&
      batch.logits + batch.n_logits <= host_logits_ + host_logits_capacity_) {
    logits_mapped_ = host_logits_device_ + (batch.logits - host_logits_);
  }
  ops_.clear();
  if (logits_.bytes() < batch.n_logits * sizeof(float)) {
    logits_ = DeviceBuffer(batch.n_logits * sizeof(float));
    bump_epoch();
  }
  return logits_.as<float>();
}

uint64_t CudaOps::signature(const std::vector<Op>& ops) const {
  uint64_t h = 1469598103934665603ull ^ epoch_;
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  mix(uint64_t(fuse_token_write_));
  mix(reinterpret_cast<uintptr_t>(logits_mapped_));
  for (const Op& op : ops) {
    mix(uint64_t(op.kind));
    mix(reinterpret_cast<uintptr_t>(op.w.data));
    mix(reinterpret_cast<uintptr_t>(op.a));
    mix(reinterpret_cast<uintptr_t>(op.b));
    mix(reinterpret_cast<uintptr_t>(op.out));
    mix(reinterpret_cast<uintptr_t>(op.cache));
    mix(uint64_t(op.n_rows) | uint64_t(op.dim) << 20 | uint64_t(op.n_heads) << 40);
    mix(uint64_t(op.layer) | uint64_t(op.n) << 16);
    uint32_t eps_bits;
    std::memcpy(&eps_bits, &op.eps, 4);
    mix(eps_bits);
    if (op.kind == OpKind::Rope) {
      mix(uint64_t(op.rope.head_dim) | uint64_t(op.rope.rope_dim) << 16 | uint64_t(op.rope.ordering) << 32);
      uint64_t f;
      std::memcpy(&f, &op.rope.freq_base, 4);
      std::memcpy(reinterpret_cast<char*>(&f) + 4, &op.rope.freq_scale, 4);
      mix(f);
      mix(reinterpret_cast<uintptr_t>(op.rope.freq_factors));
    }
    if (op.kind == OpKind::Attention) mix(uint64_t(attention_wide(op)));
  }
  return h;
}

void CudaOps::end_forward() {
  in_forward_ = false;
  const int n = batch_.n;
  const bool graph_mode = graphs_enabled_ && n == 1;
  prepare(ops_, graph_mode);
  upload_ids(batch_.tokens, batch_.positions, n);
  bool logits_written = false;
  if (graph_mode) {
    const uint64_t sig = signature(ops_);
    if (graph_exec_ == nullptr || sig != graph_signature_) {
      if (graph_exec_) KVANT_CUDA_CHECK(cudaGraphExecDestroy(graph_exec_));
      if (graph_) KVANT_CUDA_CHECK(cudaGraphDestroy(graph_));
      graph_exec_ = nullptr;
      graph_ = nullptr;
      KVANT_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      execute(ops_, true);
      KVANT_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph_));
      size_t n_nodes = 0;
      KVANT_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &n_nodes));
      graph_nodes_ = int(n_nodes);
      KVANT_CUDA_CHECK(cudaGraphInstantiate(&graph_exec_, graph_, 0));
      graph_signature_ = sig;
      graph_logits_written_ = logits_written_;
    }
    KVANT_CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream_));
    logits_written = graph_logits_written_;
  } else {
    execute(ops_, false);
    logits_written = logits_written_;
  }
  if (!logits_written) {
    KVANT_CUDA_CHECK(cudaMemcpyAsync(batch_.logits, logits_.get(), batch_.n_logits * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream_));
  }
  KVANT_CUDA_CHECK(cudaStreamSynchronize(stream_));
  ops_.clear();
  rope_table_op_ = nullptr;  // pointed into ops_; ops run outside a forward compute their angles
}

void CudaOps::run_immediately(const Op& op_in) {
  Op op = op_in;
  // fill_for_benchmark passes host K/V rows: stage them on the device.
  if (op.kind == OpKind::KvWrite) {
    cudaPointerAttributes attr{};
    const bool host = cudaPointerGetAttributes(&attr, op.a) != cudaSuccess || attr.type != cudaMemoryTypeDevice;
    cudaGetLastError();
    if (host) {
      const KvCacheConfig& c = op.cache->config();
      const size_t bytes = size_t(op.n_rows) * c.n_head_kv * c.head_dim * sizeof(float);
      if (staging_.bytes() < 2 * bytes) staging_ = DeviceBuffer(2 * bytes);
      KVANT_CUDA_CHECK(cudaMemcpyAsync(staging_.get(), op.a, bytes, cudaMemcpyHostToDevice, stream_));
      KVANT_CUDA_CHECK(cudaMemcpyAsync(staging_.as<uint8_t>() + bytes, op.b, bytes, cudaMemcpyHostToDevice, stream_));
      op.a = staging_.as<float>();
      op.b = reinterpret_cast<const float*>(staging_.as<uint8_t>() + bytes);
    }
  }
  const std::vector<Op> one{op};
  prepare(one, false);
  const bool tokens = op.kind == OpKind::Embed;
  if (op.ids) upload_ids(tokens ? op.ids : nullptr, tokens ? nullptr : op.ids, op.n_rows);
  execute(one, false);
  KVANT_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// Whether two RoPE ops rotate by the same angles (one table serves both).
static bool same_rope_angles(const RopeConfig& a, const RopeConfig& b) {
  return a.rope_dim == b.rope_dim && a.freq_base == b.freq_base && a.freq_scale == b.freq_scale &&
         a.freq_factors == b.freq_factors;
}

void CudaOps::prepare(const std::vector<Op>& ops, bool graph_mode) {
  // A one-row forward whose RoPE ops all share their angles, after its embedding: the embed kernel writes the
  // RoPE table the attention and RoPE/KV kernels read (RopeParams::table).
  rope_table_op_ = nullptr;
  bool embedded = false, table_ok = rope_table_enabled_;
  for (const Op& op : ops) {
    if (op.kind == OpKind::Embed) embedded = op.n_rows == 1;
    if (op.kind != OpKind::Rope) continue;
    if (!embedded || op.n_rows != 1 || op.rope.rope_dim / 2 > kKvMaxHeadDim / 2 ||
        (rope_table_op_ != nullptr && !same_rope_angles(rope_table_op_->rope, op.rope))) {
      table_ok = false;
    }
    if (rope_table_op_ == nullptr) rope_table_op_ = &op;
  }
  if (!table_ok) rope_table_op_ = nullptr;
  if (rope_table_op_ != nullptr && rope_table_.bytes() == 0) {
    rope_table_ = DeviceBuffer(sizeof(float2) * kKvMaxHeadDim / 2);
    bump_epoch();
  }
  size_t partial_floats = 0;
  for (const Op& op : ops) {
    switch (op.kind) {
      case OpKind::Embed:
      case OpKind::RmsNorm:
      case OpKind::Matmul: weight(op.w); break;
      case OpKind::Rope: freq_factors(op.rope.freq_factors, op.rope.rope_dim / 2); break;
      case OpKind::KvWrite: kv(*op.cache); break;
      case OpKind::Attention: {
        const DeviceKv& dk = kv(*op.cache);
        int splits_window = 0;
        const int splits = attention_splits(op, graph_mode, &splits_window);
        partial_floats = std::max(partial_floats, attention_partial_floats(op.n_rows, op.n_heads, dk.cfg.head_dim,
                                                                           splits + splits_window));
        break;
      }
      default: break;
    }
  }
  if (partial_.bytes() < partial_floats * sizeof(float)) {
    partial_ = DeviceBuffer(partial_floats * sizeof(float));
    bump_epoch();
  }
}

// A decode step on tensor cores (turbo_kv_4b K and V, d = 64 or 128, groups of at most 4) whose row sees
// at least attention_wide_keys_ compressed keys now runs wide blocks (attention_wide_ok). The decision
// follows the position also in a graph: it is part of the graph's signature, so the decode that crosses
// the threshold captures once more. H200, llama-3.2-1b / -3.1-8b shapes: 4-warp blocks are faster at 32K
// keys (wide −3 % / −4 to −6 % per token, although an attention alone is 4–9 % faster; not explained yet —
// one candidate: a wide block needs a whole SM free before it starts), even at 48K, wide faster from 64K
// (8B +5 %; 1B at 128K +8 %).
bool CudaOps::attention_wide(const Op& op) const {
  const KvCacheConfig& c = op.cache->config();
  if (attention_warps_ != kAttnWideWarps || !mma_attention_ || op.n_rows != 1 || op.ids == nullptr ||
      window_only_kv(op.cache->window(), c.n_ctx) || !attention_uses_mma(c.type_k, c.type_v, int(c.head_dim)) ||
      op.n_heads > 4 * int(c.n_head_kv))  // 4-head blocks (attention_group_chunk)
    return false;
  return int64_t(op.ids[0]) + 1 - int64_t(op.cache->window()) >= attention_wide_keys_;
}

int CudaOps::attention_splits(const Op& op, bool graph_mode, int* splits_window, int* warps) const {
  const KvCacheConfig& c = op.cache->config();
  // Keys a row can see. In a graph: the context capacity, so the launch shape captured once stays
  // valid for every replay (the kernels read the position from the device; the split count only
  // depends on the cache, the batch shape and the device). Eager: the batch's largest position + 1.
  int max_keys = int(c.n_ctx);
  if (!graph_mode && op.ids) {
    max_keys = 1;
    for (int r = 0; r < op.n_rows; ++r) max_keys = std::max(max_keys, op.ids[r] + 1);
  }
  // A window-only cache is attended as an f16 cache stored in its ring (emit_attention).
  const bool window_only = window_only_kv(op.cache->window(), c.n_ctx);
  const int window = window_only ? 0 : int(op.cache->window());
  *splits_window = window > 0 ? 1 : 0;
  if (warps) *warps = 4;
  // Every key is still in the f16 window: no compressed split at all, so one block per head sees the
  // whole context and writes the output itself (no combine launch).
  if (window > 0 && max_keys <= window) return 0;
  const int group = op.n_heads / int(c.n_head_kv);
  const int heads_per_block = group <= 4 || c.head_dim > 128 ? 4 : 8;  // attention_group_chunk()
  const int base_blocks = op.n_rows * int(c.n_head_kv) * ((group + heads_per_block - 1) / heads_per_block);
  const int by_keys = std::max(1, ceil_div(max_keys - window, 256));
  // Wide blocks: one per SM, as many as fit in one wave.
  const bool wide = attention_wide(op);
  if (wide && warps) *warps = kAttnWideWarps;
  if (attention_splits_ > 0) return attention_splits_;
  if (wide) return std::clamp(std::min(device_sm_count() / base_blocks, by_keys), 1, 64);
  // About 4 blocks (16 warps) per SM, each split at least 256 keys (64 per warp).
  const int want = std::max(1, ceil_div(4 * device_sm_count(), base_blocks));
  return std::clamp(std::min(want, by_keys), 1, 64);
}

}  // namespace cuda
}  // namespace kvant
