// tools/cmd_run.cpp — `kvant run`: generate text from a prompt. Generated text only on stdout;
// progress, KV summary and timings on stderr.
#include <chrono>
#include <cstdio>
#include <unistd.h>

#include "common.h"
#include "kv_context.h"

namespace kvant::cli {

int cmd_run(const std::vector<std::string>& args) {
  std::string model_path, prompt, prompt_file, logits_out, save_kv, load_kv;
  int32_t n_predict = 128;
  bool ignore_eos = false, no_special = false;
  SessionParams session;
  SamplerParams sampling;
  ArgParser p("run", "Generate text from a prompt with the model (greedy with --temp 0).");
  p.option({"-m", "--model"}, &model_path, "FILE", "GGUF model (required)");
  p.option({"-p", "--prompt"}, &prompt, "TEXT", "prompt text");
  p.option({"-f", "--file"}, &prompt_file, "FILE", "read the prompt from a file");
  p.option({"-n", "--n-predict"}, &n_predict, "N", "tokens to generate (default 128, -1: until EOS or context end)", -1, 1 << 24);
  add_sampling_options(p, sampling);
  p.option({"--logits-out"}, &logits_out, "FILE", "write the last prompt position's logits (raw f32 LE)");
  p.option({"--save-kv"}, &save_kv, "FILE", "save the tokens and KV cache after generation");
  p.option({"--load-kv"}, &load_kv, "FILE", "start from a saved KV context (the prompt must begin with its tokens)");
  p.flag({"--ignore-eos"}, &ignore_eos, "keep generating after end-of-generation tokens");
  p.flag({"--no-special"}, &no_special, "do not parse special tokens written in the prompt");
  add_session_options(p, session);
  if (Status st = p.parse(args); !st) return fail("run", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
  if (model_path.empty()) return fail("run", "missing -m/--model FILE");
  if (!prompt_file.empty()) {
    if (!prompt.empty()) return fail("run", "give either -p/--prompt or -f/--file, not both");
    auto text = read_text_file(prompt_file);
    if (!text) return fail("run", text.error());
    prompt = *text;
  }
  if (Status st = check_sampling(sampling); !st) return fail("run", st.message());

  auto model = Model::load(model_path);
  if (!model) return fail("run", model.error());
  auto session_or = Session::create(*model, session);
  if (!session_or) return fail("run", session_or.error());
  Session& s = **session_or;
  const Model& m = **model;

  std::vector<int32_t> tokens = m.tokenize(prompt, true, !no_special);
  if (tokens.empty()) return fail("run", "the prompt is empty and the model adds no BOS token");
  if (tokens.size() > s.n_ctx()) {
    return fail("run", "prompt is " + std::to_string(tokens.size()) + " tokens, longer than the context of " +
                           std::to_string(s.n_ctx()) + " (raise -c/--ctx-size)");
  }
  std::fprintf(stderr, "kvant run: %s, %zu prompt tokens, context %u, KV %s (%s per token, %.2fx smaller than f16)\n",
               m.info().path.c_str(), tokens.size(), s.n_ctx(), s.kv_description().c_str(),
               human_bytes(s.kv_bytes_per_token()).c_str(),
               double(s.kv_bytes_f16_per_token()) / double(s.kv_bytes_per_token()));

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  size_t n_reused = 0;  // prompt tokens restored from --load-kv instead of evaluated
  if (!load_kv.empty()) {
    auto reused = resume_from_saved(s, load_kv, tokens);
    if (!reused) return fail("run", reused.error());
    n_reused = *reused;
    std::fprintf(stderr, "kvant run: loaded %zu tokens from %s\n", n_reused, load_kv.c_str());
  }
  if (Status st = s.eval(std::vector<int32_t>(tokens.begin() + long(n_reused), tokens.end())); !st) {
    return fail("run", st.message());
  }
  const auto t1 = Clock::now();
  if (!logits_out.empty()) {
    FILE* f = std::fopen(logits_out.c_str(), "wb");
    if (f == nullptr) return fail("run", logits_out + ": cannot open for writing");
    const size_t n = size_t(m.n_vocab());
    const bool ok = std::fwrite(s.logits(), sizeof(float), n, f) == n;
    if (std::fclose(f) != 0 || !ok) return fail("run", logits_out + ": write failed");
  }

  Sampler sampler(sampling);
  for (int32_t t : tokens) sampler.accept(t);
  int generated = 0;
  std::string stop_reason = "n_predict reached";
  while (n_predict < 0 || generated < n_predict) {
    const int32_t next = sampler.sample(s.logits(), m.n_vocab());
    if (!ignore_eos && m.is_end_of_generation(next)) {
      stop_reason = "end of generation token";
      break;
    }
    const std::string piece = m.token_to_piece(next);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    sampler.accept(next);
    ++generated;
    if (n_predict >= 0 && generated >= n_predict) break;
    if (s.n_past() >= s.n_ctx()) {
      stop_reason = "context full";
      break;
    }
    if (Status st = s.eval({next}); !st) return fail("run", st.message());
  }
  if (isatty(fileno(stdout))) std::fputc('\n', stdout);  // keep piped output byte-exact
  if (!save_kv.empty()) {
    if (Status st = s.save_kv(save_kv); !st) return fail("run", st.message());
  }
  const auto t2 = Clock::now();
  const double prompt_s = std::chrono::duration<double>(t1 - t0).count();
  const double gen_s = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(stderr, "kvant run: prompt %zu tokens in %.3f s (%.1f tok/s); generated %d tokens in %.3f s (%.1f tok/s); stop: %s\n",
               tokens.size(), prompt_s, double(tokens.size()) / std::max(prompt_s, 1e-9), generated, gen_s,
               double(generated) / std::max(gen_s, 1e-9), stop_reason.c_str());
  std::fprintf(stderr, "kvant run: KV cache %s at %u tokens (+%s f16 window; f16 cache would be %s)\n",
               human_bytes(s.kv_bytes_per_token() * s.n_past()).c_str(), s.n_past(), human_bytes(s.kv_window_bytes()).c_str(),
               human_bytes(s.kv_bytes_f16_per_token() * s.n_past()).c_str());
  return 0;
}

}  // namespace kvant::cli
