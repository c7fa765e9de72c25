// runtime/fingerprint.cpp — model fingerprint: hash of hparams and the tensor directory (not the weights,
// so that it is cheap; two files with the same shapes but other weights share a fingerprint).
#include "runtime/fingerprint.h"

#include <cstdio>
#include <string>

#include "kv/kv_serialize.h"

namespace kvant {

uint64_t model_fingerprint(const Model& model) {
  const ModelInfo& m = model.info();
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s|vocab=%u|ctx=%u|embd=%u|layer=%u|head=%u|head_kv=%u|head_dim=%u|ff=%u|rope=%u|%.9g|%.9g|%d|%d|%d",
                m.architecture.c_str(), m.n_vocab, m.n_ctx_train, m.n_embd, m.n_layer, m.n_head, m.n_head_kv,
                m.head_dim, m.n_ff, m.rope_dim, double(m.rope_freq_base), double(m.rms_eps), int(m.rope_neox),
                int(m.tied_output), int(m.has_rope_freqs));
  std::string text = buf;
  for (const ModelInfo::Tensor& t : m.tensors) {
    // Plain appends: GCC 12 reports a false -Wrestrict on chained "|" + name + ... temporaries.
    text.append("|").append(t.name).append(":").append(t.type);
    for (uint64_t d : t.ne) text.append(",").append(std::to_string(d));
  }
  return fnv1a64(text.data(), text.size());
}

}  // namespace kvant
