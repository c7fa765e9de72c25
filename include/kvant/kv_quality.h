// kvant/kv_quality.h — KV-cache quality on dumped K/V tensors ("QVKT" files): reading and validating the
// dumps, and per-type reconstruction error (NMSE), inner-product error and attention-output error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kvant/status.h"

namespace kvant {

// One dump file: magic "QVKT" (u32 LE 0x544B5651), layer, num_heads, seq_len, head_dim (u32 LE each),
// then float32 data[num_heads][seq_len][head_dim].
struct KvDump {
  std::string path;
  uint32_t layer = 0, num_heads = 0, seq_len = 0, head_dim = 0;
  std::vector<float> data;

  const float* vec(uint32_t head, uint32_t token) const {
    return data.data() + (size_t(head) * seq_len + token) * head_dim;
  }
};

// The keys and values dump of one layer (same layer, heads, tokens and head_dim).
struct KvDumpPair {
  KvDump keys, values;
};

// Reads and validates one dump; every error names the file (bad magic, size mismatch, zero or
// oversized dimensions, non-finite values).
Expected<KvDump> read_kv_dump(const std::string& path);

// Reads every layer<N>_keys.bin / layer<N>_values.bin pair of a directory, sorted by layer. Fails when
// the directory is missing, holds no dumps, a keys file has no values partner (or the reverse), the
// header layer differs from the file name, or the two files' shapes differ.
Expected<std::vector<KvDumpPair>> read_kv_dump_dir(const std::string& dir);

struct KvQualityOptions {
  // Types to measure: a KV type name ("q4_0", "turbo_kv_4b"), with "_rot" for the rotated variant
  // ("q4_0_rot"). Empty: kv_quality_default_types().
  std::vector<std::string> types;
  // Token t of every head is a held-out query (not encoded) when t % query_every == query_every - 1.
  int query_every = 4;
  // Use the scalar kernels instead of the fastest ones this CPU runs (for cross-checks).
  bool force_scalar = false;
};

// f32, f16, q8_0, q8_0_rot, q4_0, q4_0_rot, turbo_kv_2b, turbo_kv_3b, turbo_kv_4b, turbo_kv_5b.
std::vector<std::string> kv_quality_default_types();

// Quality of one KV type aggregated over every layer and head of the dumps. Definitions (also in
// docs/KV-QUALITY.md):
//   nmse         = Σ‖x − x̂‖² / Σ‖x‖² over every vector of the keys and values files (all tokens);
//                  nmse_keys / nmse_values are the same sum restricted to one file kind.
//   ip_rel_err   = Σ|q·k − q·k̂| / Σ|q·k| over every held-out query q and every encoded key k of the
//                  same head; q·k in double from the originals, q·k̂ from prepare_query + score.
//   attn_rel_err = mean over queries of ‖o − ô‖ / ‖o‖ where o = Σ_t softmax_t(q·k_t/√d) v_t over the
//                  encoded (non-held-out) tokens, exact in double; ô uses the codec's score, a softmax,
//                  accumulate over the values encoded with the same type, and finish_output.
struct KvQualityRow {
  std::string type;  // as accepted in KvQualityOptions::types: "q4_0", "q4_0_rot", "turbo_kv_4b"
  bool rotated = false;
  double bits_per_element = 0, nmse = 0, ip_rel_err = 0, attn_rel_err = 0;
  double nmse_keys = 0, nmse_values = 0;
};

// Counts behind the aggregation, for reports.
struct KvQualityCounts {
  uint64_t vectors = 0;       // K and V vectors in the nmse sums
  uint64_t queries = 0;       // held-out query vectors
  uint64_t query_key_pairs = 0;
};
KvQualityCounts kv_quality_counts(const std::vector<KvDumpPair>& dumps, int query_every = 4);

Expected<std::vector<KvQualityRow>> measure_kv_quality(const std::vector<KvDumpPair>& dumps,
                                                       const KvQualityOptions& options = {});
// Reads the directory (read_kv_dump_dir) and measures it.
Expected<std::vector<KvQualityRow>> measure_kv_quality(const std::string& dump_dir,
                                                       const KvQualityOptions& options = {});

}  // namespace kvant
