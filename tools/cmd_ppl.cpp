// tools/cmd_ppl.cpp — `kvant ppl`: perplexity (llama.cpp method) with progress per chunk on stderr,
// "Final estimate: PPL = X +/- Y" on stdout, or one JSON object with --json.
#include <cstdio>

#include "common.h"

namespace kvant::cli {

int cmd_ppl(const std::vector<std::string>& args) {
  std::string model_path, text_path;
  bool json = false;
  SessionParams session;
  PerplexityParams params;
  ArgParser p("ppl", "Perplexity of a text, as llama.cpp's llama-perplexity computes it; KL-divergence vs a saved base.");
  p.option({"-m", "--model"}, &model_path, "FILE", "GGUF model (required)");
  p.option({"-f", "--file"}, &text_path, "FILE", "text file (required)");
  p.option({"--chunks"}, &params.n_chunks, "N", "score at most N chunks (default: all)", 1, INT32_MAX);
  p.option({"--kl-base-save"}, &params.kl_base_save, "FILE", "save this run's log-probabilities as a KL base");
  p.option({"--kl-base"}, &params.kl_base, "FILE", "report KL-divergence against a saved base");
  p.flag({"--json"}, &json, "print one JSON object instead of the text summary");
  add_session_options(p, session);
  if (Status st = p.parse(args); !st) return fail("ppl", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
  if (model_path.empty()) return fail("ppl", "missing -m/--model FILE");
  if (text_path.empty()) return fail("ppl", "missing -f/--file FILE");
  params.n_ctx = session.n_ctx == 0 ? 512 : session.n_ctx;
  auto text = read_text_file(text_path);
  if (!text) return fail("ppl", text.error());
  auto model = Model::load(model_path);
  if (!model) return fail("ppl", model.error());

  SessionParams sized = session;
  sized.n_ctx = params.n_ctx;
  auto kv = kv_footprint(**model, sized);
  if (!kv) return fail("ppl", kv.error());
  std::fprintf(stderr, "kvant ppl: %s on %s, ctx %u, KV %s: %llu bytes per token (%.2fx smaller than f16), %s at ctx %u\n",
               model_path.c_str(), text_path.c_str(), params.n_ctx, kv->description.c_str(),
               static_cast<unsigned long long>(kv->bytes_per_token), double(kv->f16_bytes_per_token) / double(kv->bytes_per_token),
               human_bytes(kv->bytes_per_token * params.n_ctx + kv->window_bytes).c_str(), params.n_ctx);
  auto result = compute_perplexity(*model, session, *text, params, [](int chunk, double ppl) {
    std::fprintf(stderr, "[%d]%.4f,", chunk, ppl);
    std::fflush(stderr);
  });
  std::fputc('\n', stderr);
  if (!result) return fail("ppl", result.error());
  const PerplexityResult& r = *result;
  if (json) {
    std::printf("{\"ppl\": %.6f, \"ppl_err\": %.6f, \"n_tokens_scored\": %llu, \"n_chunks\": %d", r.ppl, r.ppl_err,
                static_cast<unsigned long long>(r.n_tokens_scored), r.n_chunks);
    if (r.has_kl) std::printf(", \"kld_mean\": %.8f, \"kld_err\": %.8f, \"same_top_pct\": %.4f", r.kld_mean, r.kld_err, r.same_top_pct);
    std::printf(", \"ctx\": %u, \"cache_type_k\": \"%s\", \"cache_type_v\": \"%s\", \"kv_bytes_per_token\": %llu, "
                "\"kv_ratio_to_f16\": %.4f}\n", params.n_ctx, session.cache_type_k.c_str(), session.cache_type_v.c_str(),
                static_cast<unsigned long long>(kv->bytes_per_token),
                double(kv->f16_bytes_per_token) / double(kv->bytes_per_token));
  } else {
    if (r.has_kl) {
      std::printf("Mean KLD: %.6f +/- %.6f\nSame top token: %.3f %%\n", r.kld_mean, r.kld_err, r.same_top_pct);
    }
    std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
  }
  return 0;
}

}  // namespace kvant::cli
