// tools/cmd_info.cpp — `kvant info`: architecture, hparams, tokenizer, tensor types and sizes, and the
// KV-cache footprint for a context and K/V types.
#include <cstdio>
#include <map>

#include "common.h"

namespace kvant::cli {

int cmd_info(const std::vector<std::string>& args) {
  std::string model_path;
  std::vector<std::string> positionals;
  bool list_tensors = false;
  SessionParams session;
  ArgParser p("info", "Describe a GGUF model and the KV-cache memory it needs.");
  p.option({"-m", "--model"}, &model_path, "FILE", "GGUF model (or give it as the argument)");
  p.option({"--ctx"}, &session.n_ctx, "N", "context for the KV-cache size (default: the model's)", 0, 1 << 24);
  p.flag({"--tensors"}, &list_tensors, "list every tensor");
  add_session_options(p, session);
  p.positional("MODEL", &positionals, 1);
  if (Status st = p.parse(args); !st) return fail("info", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
  if (model_path.empty() && !positionals.empty()) model_path = positionals[0];
  if (model_path.empty()) return fail("info", "missing model: kvant info MODEL.gguf");
  auto model = Model::load(model_path);
  if (!model) return fail("info", model.error());
  const ModelInfo& i = (*model)->info();

  std::printf("model:        %s\n", i.path.c_str());
  std::printf("name:         %s\n", i.name.c_str());
  std::printf("architecture: %s\n", i.architecture.c_str());
  std::printf("parameters:   %llu (%s of tensor data)\n", static_cast<unsigned long long>(i.n_params),
              human_bytes(i.weight_bytes).c_str());
  std::printf("hparams:      n_vocab %u, n_ctx_train %u, n_embd %u, n_layer %u, n_head %u, n_head_kv %u, head_dim %u, n_ff %u\n",
              i.n_vocab, i.n_ctx_train, i.n_embd, i.n_layer, i.n_head, i.n_head_kv, i.head_dim, i.n_ff);
  std::printf("rope:         %s, dims %u, freq_base %g%s; rms_eps %g; output %s\n", i.rope_neox ? "neox" : "normal",
              i.rope_dim, double(i.rope_freq_base), i.has_rope_freqs ? ", rope_freqs" : "", double(i.rms_eps),
              i.tied_output ? "tied to token_embd" : "separate");
  std::printf("tokenizer:    %s%s%s, bos %d, eos %d, eot %d, add_bos %s\n", i.tokenizer_model.c_str(),
              i.tokenizer_pre.empty() ? "" : " / pre ", i.tokenizer_pre.c_str(), i.bos_id, i.eos_id, i.eot_id,
              i.add_bos ? "yes" : "no");
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  for (const auto& t : i.tensors) {
    by_type[t.type].first++;
    by_type[t.type].second += t.bytes;
  }
  std::printf("tensor types:");
  for (const auto& [type, count_bytes] : by_type) {
    std::printf(" %s x%d (%s)", type.c_str(), count_bytes.first, human_bytes(count_bytes.second).c_str());
  }
  std::printf("\n");
  if (list_tensors) {
    for (const auto& t : i.tensors) {
      std::string shape;
      for (size_t d = 0; d < t.ne.size(); ++d) shape += (d ? " x " : "") + std::to_string(t.ne[d]);
      std::printf("  %-32s %-6s [%s] %s\n", t.name.c_str(), t.type.c_str(), shape.c_str(), human_bytes(t.bytes).c_str());
    }
  }
  auto kv = kv_footprint(**model, session);
  if (!kv) return fail("info", kv.error());
  const uint64_t total = kv->bytes_per_token * kv->n_ctx + kv->window_bytes;
  const uint64_t f16_total = kv->f16_bytes_per_token * kv->n_ctx;
  std::printf("kv cache:     %s\n", kv->description.c_str());
  std::printf("kv bits/elem: K %.3f, V %.3f (f16: 16)\n", kv->k_bits_per_element, kv->v_bits_per_element);
  std::printf("kv per token: %llu bytes (f16: %llu bytes, %.2fx)\n", static_cast<unsigned long long>(kv->bytes_per_token),
              static_cast<unsigned long long>(kv->f16_bytes_per_token),
              double(kv->f16_bytes_per_token) / double(kv->bytes_per_token));
  std::printf("kv at ctx %u: %llu bytes = %s (f16 window %s included; f16 cache: %s, %.2fx)\n", kv->n_ctx,
              static_cast<unsigned long long>(total), human_bytes(total).c_str(), human_bytes(kv->window_bytes).c_str(),
              human_bytes(f16_total).c_str(), double(f16_total) / double(total));
  return 0;
}

}  // namespace kvant::cli
