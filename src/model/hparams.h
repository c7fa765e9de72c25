// model/hparams.h — transformer hyper-parameters read from GGUF `<arch>.*` keys, shared by families.
#pragma once

#include <cstdint>
#include <string>

#include "backends/ops.h"
#include "gguf/gguf.h"
#include "kvant/status.h"

namespace kvant {

struct Hparams {
  std::string arch;
  uint32_t n_vocab = 0;
  uint32_t n_ctx_train = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_ff = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;
  uint32_t rope_dim = 0;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;
  float rms_eps = 1e-5f;
  RopeOrdering rope_ordering = RopeOrdering::Normal;

  uint32_t n_embd_kv() const { return n_head_kv * head_dim; }
  uint32_t n_embd_q() const { return n_head * head_dim; }
};

// Reads and sanity-checks the hparams of architecture `arch`; errors name the file, key and value.
Expected<Hparams> read_hparams(const gguf::File& file, const std::string& arch);

}  // namespace kvant
