// kv/kv_codec.h — KvCodec: encode one head vector into a KV-cache block and run attention directly on
// the blocks (score = q·k for many cached tokens, accumulate = Σ w·v), scalar, AVX2 or AVX-512 chosen at start-up.
//
// Usage for one KV head with G query heads (GQA), rows of n cached tokens spaced `stride` bytes apart:
//   codec.encode(k, block)                           once per new token
//   codec.prepare_query(q_h, qp + h*d)               once per query head (rotates for rotated types;
//                                                    scale q by 1/sqrt(d) before if you want it scaled)
//   codec.score_group(G, qp, blocks, stride, n, s)   s[h*n + t] = q_h · k_t
//   ... softmax over s ...
//   codec.accumulate_group(G, p, vblocks, stride, n, acc)   acc[h*d + i] += Σ_t p[h*n+t] v_t[i]
//   codec.finish_output(acc + h*d)                   once per head after all accumulate calls
// For rotated types (turbo_kv_*, rotated q8_0/q4_0) q and acc live in the rotated basis between
// prepare_query and finish_output. Block layouts are documented in docs/FORMATS.md (KV-cache codecs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kv/kv_kernels.h"
#include "kv/kv_types.h"
#include "kvant/status.h"

namespace kvant {

enum class KvIsa { Scalar, Avx2, Avx512 };

const char* kv_isa_name(KvIsa isa);
// Whether this CPU runs the kernels of `isa` (Avx2 needs AVX2, FMA and F16C; Avx512 needs those and
// AVX-512 F/BW/VL/DQ; under Avx512 types without an AVX-512 kernel use their AVX2 one).
bool kv_isa_supported(KvIsa isa);
// The fastest supported ISA, detected once.
KvIsa kv_best_isa();

class KvCodec {
 public:
  KvType type() const { return type_; }
  bool rotated() const { return rotated_; }
  int head_dim() const { return head_dim_; }
  size_t bytes_per_vector() const { return bytes_; }
  KvIsa isa() const { return isa_; }

  // Encodes one head vector x[d] into bytes_per_vector() bytes at dst.
  void encode(const float* x, uint8_t* dst) const;
  // Decodes one block back to x[d] in the original basis (tests, debugging, save/load checks).
  void decode(const uint8_t* src, float* out) const;

  // q_prepared[d] = the query in the basis the blocks are stored in (rotated or a copy). May alias.
  void prepare_query(const float* q, float* q_prepared) const;
  // Brings an accumulated output acc[d] back to the original basis (in place; no-op if not rotated).
  void finish_output(float* acc) const;

  // scores[t] = q_prepared · k_t for t < n_tokens.
  void score(const float* q_prepared, const uint8_t* blocks, size_t stride, int n_tokens,
             float* scores) const {
    kernels_.score_group(head_dim_, 1, q_prepared, blocks, stride, n_tokens, scores);
  }
  // acc[i] += Σ_t weights[t] · v_t[i].
  void accumulate(const float* weights, const uint8_t* blocks, size_t stride, int n_tokens,
                  float* acc) const {
    kernels_.accumulate_group(head_dim_, 1, weights, blocks, stride, n_tokens, acc);
  }
  // GQA: n_heads query heads share the cached vectors; each element is decoded once for all of them.
  // q_prepared[n_heads][d], scores[n_heads][n_tokens].
  void score_group(int n_heads, const float* q_prepared, const uint8_t* blocks, size_t stride,
                   int n_tokens, float* scores) const {
    kernels_.score_group(head_dim_, n_heads, q_prepared, blocks, stride, n_tokens, scores);
  }
  // weights[n_heads][n_tokens], acc[n_heads][d].
  void accumulate_group(int n_heads, const float* weights, const uint8_t* blocks, size_t stride,
                        int n_tokens, float* acc) const {
    kernels_.accumulate_group(head_dim_, n_heads, weights, blocks, stride, n_tokens, acc);
  }

 private:
  friend Expected<KvCodec> make_kv_codec(KvType, int, bool, std::string_view, KvIsa);
  KvType type_ = KvType::F32;
  bool rotated_ = false;
  int head_dim_ = 0;
  size_t bytes_ = 0;
  KvIsa isa_ = KvIsa::Scalar;
  kv_internal::KvKernels kernels_{};  // encode/decode scalar, score/accumulate of isa_
};

// A codec for head vectors of `head_dim` elements. turbo_kv_* are always rotated (`rotate` is
// ignored); for the others `rotate` applies the same H·S rotation before quantising. Fails with a
// message naming `role` ("K", "V"), the type and head_dim when the combination is not supported, or
// when `isa` is not supported by this CPU.
Expected<KvCodec> make_kv_codec(KvType type, int head_dim, bool rotate, std::string_view role = "KV",
                                KvIsa isa = kv_best_isa());

}  // namespace kvant
